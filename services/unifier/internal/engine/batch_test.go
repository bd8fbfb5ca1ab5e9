package engine_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/services/unifier/internal/engine"
	"github.com/omnibus-dev/omnibus/services/unifier/internal/store"
)

// status builds an outbound message's delivery status; with to set, it is the first news of that
// message (recorded on the customer's conversation) unless the store knows the message already.
// Its partition key is the recipient's, as the channel connectors set it.
func status(t testing.TB, eventID, channel, messageID string, at time.Time, to *id) bus.Delivery {
	t.Helper()
	return statusOf(t, eventID, channel, messageID, "delivered", at, to, to != nil)
}

func statusOf(t testing.TB, eventID, channel, messageID, st string, at time.Time, to *id, withBody bool) bus.Delivery {
	t.Helper()
	data := map[string]any{"channel": channel, "message_id": messageID, "status": st, "at": at}
	var opts []event.Option
	if to != nil {
		data["to"] = map[string]string{"kind": to.kind, "value": to.value}
		opts = append(opts, event.WithPartitionKey(to.kind+":"+to.value))
	}
	if withBody {
		data["message"] = map[string]any{"type": "text", "text": "reply on " + channel}
	}
	e, err := event.New(engine.TypeStatusUpdated, "/connectors/"+channel, data, append(opts, event.WithID(eventID), event.WithTime(at))...)
	if err != nil {
		t.Fatal(err)
	}
	return bus.Delivery{Event: e, Subject: "omni.in." + channel + ".status"}
}

// mix shapes a workload: how many customers, the share of outbound statuses, and the share of
// messages that carry a phone (half of the time another customer's, which merges them).
type mix struct {
	customers       int
	statuses, links float64
}

// workload returns a random but reproducible sequence of events over a few customers: first
// messages, cross-channel links that merge customers, display names, idle gaps, times that go
// backwards, duplicates, and outbound statuses (first news of replies, later and older statuses,
// statuses of replies never seen).
func workload(t testing.TB, seed uint64, n int, w mix) []bus.Delivery {
	customers := w.customers
	r := rand.New(rand.NewPCG(seed, 99))
	ident := func(k int, kind string) id {
		switch kind {
		case "wechat_openid":
			return id{kind, fmt.Sprintf("o-%d", k)}
		case "phone":
			return id{kind, fmt.Sprintf("+86139%08d", 100+k)}
		case "email":
			return id{kind, fmt.Sprintf("c%d@example.com", k)}
		}
		return id{"web_visitor", fmt.Sprintf("v-%d", k)}
	}
	chans := []struct{ name, kind string }{{"wechatkf", "wechat_openid"}, {"sms", "phone"}, {"webchat", "web_visitor"}}
	at := t0
	var out []bus.Delivery
	type reply struct {
		id string
		to id
	}
	var sent []reply
	for i := 0; len(out) < n; i++ {
		switch x := r.Float64(); {
		case x < 0.1:
			at = at.Add(time.Duration(25+r.IntN(10)) * time.Hour) // past the idle timeout
		case x < 0.2:
			at = at.Add(-time.Duration(r.IntN(600)) * time.Second) // late
		default:
			at = at.Add(time.Duration(1+r.IntN(600))*time.Second + time.Duration(r.IntN(1000))) // sub-microsecond parts too
		}
		if len(out) > 0 && r.Float64() < 0.05 {
			out = append(out, out[r.IntN(len(out))]) // a redelivery
			continue
		}
		k := r.IntN(customers)
		if r.Float64() < w.statuses {
			id := fmt.Sprintf("status:%d", i)
			switch y := r.Float64(); {
			case y < 0.5 || len(sent) == 0: // the first news of a reply
				to := ident(k, []string{"phone", "wechat_openid"}[r.IntN(2)])
				sent = append(sent, reply{fmt.Sprintf("out-%d", i), to})
				out = append(out, status(t, id, "sms", fmt.Sprintf("out-%d", i), at, &to))
			case y < 0.9: // a later (or, with a time gone back, older) status of a reply, maybe in the same batch
				p := sent[len(sent)-1-r.IntN(min(len(sent), 5))]
				to := p.to
				out = append(out, statusOf(t, id, "sms", p.id, []string{"delivered", "read", "failed"}[r.IntN(3)], at, &to, r.IntN(2) == 0))
			default: // a status of a reply the store never saw, with nothing to record
				out = append(out, statusOf(t, id, "sms", fmt.Sprintf("ghost-%d", i), "sent", at, nil, false))
			}
			continue
		}
		c := chans[r.IntN(len(chans))]
		var extra []id
		if r.Float64() < w.links {
			extra = append(extra, ident((k+r.IntN(2))%customers, "phone")) // sometimes another customer's: a merge
		}
		if r.Float64() < 0.1 {
			extra = append(extra, ident(k, "email"))
		}
		d := msg(t, fmt.Sprintf("%s:%d", c.name, i), c.name, at, ident(k, c.kind), extra...)
		if r.Float64() < 0.2 {
			e := d.Event.Clone()
			var data map[string]any
			_ = event.DecodeData(e, &data)
			data["display_name"] = fmt.Sprintf("客户 %d", k)
			if err := e.SetData("application/json", data); err != nil {
				t.Fatal(err)
			}
			d.Event = e
		}
		out = append(out, d)
	}
	return out
}

// state is the canonical dump of the store plus the outbox: the set of rows, and the order of
// the rows that follow one identity's events.
func state(t testing.TB, b *bundle) (dump, outbox, order string) {
	t.Helper()
	ctx := context.Background()
	dump, err := store.Dump(ctx, b.pool)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := b.pool.Query(ctx, `SELECT row_to_json(o)::text FROM (SELECT id, subject, type, ce_subject, partitionkey, correlationid,
		time, data::jsonb AS data FROM outbox ORDER BY id, data::jsonb::text) o`)
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for rows.Next() {
		var s string
		_ = rows.Scan(&s)
		all = append(all, s)
	}
	rows.Close()
	rows, err = b.pool.Query(ctx, `SELECT partitionkey, string_agg(id, ' ' ORDER BY seq) FROM outbox WHERE partitionkey IS NOT NULL
		GROUP BY partitionkey ORDER BY partitionkey`)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []string
	for rows.Next() {
		var k, s string
		_ = rows.Scan(&k, &s)
		seqs = append(seqs, k+": "+s)
	}
	rows.Close()
	return dump, strings.Join(all, "\n"), strings.Join(seqs, "\n")
}

// checkMessages checks what the messages table has no foreign keys for: every message is on a
// conversation that exists, of the message's customer, who exists and was not merged away.
func (b *bundle) checkMessages(t testing.TB) {
	t.Helper()
	if n := b.count(t, `SELECT count(*) FROM messages m LEFT JOIN conversations c ON c.id = m.conversation_id
		LEFT JOIN customers u ON u.id = m.customer_id
		WHERE c.id IS NULL OR c.customer_id <> m.customer_id OR u.id IS NULL OR u.merged_into IS NOT NULL`); n != 0 {
		t.Fatalf("%d messages on a missing conversation or customer, or not on their conversation's customer", n)
	}
}

func firstDiff(a, b string) string {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(la), len(lb)) {
		if la[i] != lb[i] {
			return fmt.Sprintf("line %d:\n  want: %s\n  got:  %s", i+1, la[i], lb[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(la), len(lb))
}

// The one path applies the workload to the store recorded in testdata (recorded, before the
// set-based path became the only one, from the per-event handlers applying the events one by
// one): the same store, the same desk events with the same ids and data, in the same order for
// each identity — whatever the batch boundaries. go test -run TestWorkloadGolden -update records
// the files again; review their diff.
func TestWorkloadGolden(t *testing.T) {
	t.Parallel()
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			evs := workload(t, seed, 400, mix{customers: 9, statuses: 0.3, links: 0.25})
			got := setup(t)
			r := rand.New(rand.NewPCG(seed, 5))
			for rest := evs; len(rest) > 0; {
				n := 1 + r.IntN(min(len(rest), 60))
				got.apply(t, rest[:n]...)
				rest = rest[n:]
			}
			got.checkMessages(t)
			if got.count(t, `SELECT count(*) FROM customer_merges`) == 0 || got.count(t, `SELECT count(*) FROM conversations WHERE close_reason = 'idle'`) == 0 {
				t.Fatal("the workload exercised neither merges nor idle closes")
			}
			golden(t, fmt.Sprintf("workload-seed%d", seed), got)
		})
	}
}

// One bad event in a batch fails alone: the events before and after it commit.
func TestBatchPoisonEventFailsAlone(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var batch []bus.Delivery
	for i := range 9 {
		batch = append(batch, msg(t, fmt.Sprintf("sms:%d", i), "sms", t0.Add(time.Duration(i)*time.Minute), id{"phone", fmt.Sprintf("+861390000%04d", i%4)}))
	}
	// Valid JSON that Postgres refuses as jsonb: found only when the run is written.
	poison, err := event.New(engine.TypeMessageReceived, "/connectors/sms", map[string]any{"channel": "sms", "channel_message_id": "p",
		"from": map[string]string{"kind": "phone", "value": "+8613900000001"}, "message": map[string]any{"type": "text", "text": "\u0000"},
		"sent_at": t0}, event.WithID("sms:poison"), event.WithTime(t0))
	if err != nil {
		t.Fatal(err)
	}
	batch[5] = bus.Delivery{Event: poison}
	// Caught before any database work: an invalid sender.
	batch[2] = msg(t, "sms:bad-sender", "sms", t0, id{"phone", "not a number"})
	errs := b.en.ApplyBatch(context.Background(), batch)
	if errs == nil {
		t.Fatal("no error for the poison events")
	}
	for i, err := range errs {
		if (err != nil) != (i == 2 || i == 5) {
			t.Errorf("event %d (%s): %v", i, batch[i].Event.ID(), err)
		}
	}
	if n := b.count(t, `SELECT count(*) FROM messages`); n != 7 {
		t.Fatalf("messages: %d, want 7", n)
	}
	if n := b.count(t, `SELECT count(*) FROM processed_events`); n != 7 {
		t.Fatalf("processed: %d, want 7 (a failed event must be applied again when redelivered)", n)
	}
	if n := b.count(t, `SELECT count(*) FROM outbox WHERE type = $1`, engine.TypeDeskMessageAdded); n != 7 {
		t.Fatalf("message.added: %d, want 7", n)
	}
	b.checkMessages(t)
}

// Two events of one batch joining the same customers: the first merges them, the second finds
// them merged; later events of the batch land on the survivor.
func TestBatchTwoEventsMergeTheSameCustomers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	visitor := id{"web_visitor", "v-7"}
	b.apply(t,
		msg(t, "wechatkf:1", "wechatkf", t0, openid),
		msg(t, "sms:1", "sms", t0.Add(time.Minute), phone),
	)
	b.apply(t,
		msg(t, "sms:2", "sms", t0.Add(2*time.Minute), phone),                                    // touches B before the merge
		msg(t, "wechatkf:2", "wechatkf", t0.Add(3*time.Minute), openid, phone),                  // merges B into A
		msg(t, "webchat:1", "webchat", t0.Add(4*time.Minute), visitor, phone),                   // links a visitor to A
		msg(t, "sms:3", "sms", t0.Add(5*time.Minute), phone, openid),                            // the same pair again: nothing to merge
		msg(t, "wechatkf:3", "wechatkf", t0.Add(6*time.Minute), id{"wechat_openid", "o-other"}), // unrelated
	)
	if n := b.count(t, `SELECT count(*) FROM customer_merges`); n != 1 {
		t.Fatalf("merges: %d, want 1", n)
	}
	a := b.customerOf(t, openid.kind, openid.value)
	for _, x := range []id{{"phone", phoneN}, visitor} {
		if c := b.customerOf(t, x.kind, x.value); c != a {
			t.Fatalf("%s on %s, want %s", x.kind, c, a)
		}
	}
	if n := b.count(t, `SELECT count(*) FROM messages WHERE customer_id::text = $1`, a); n != 6 {
		t.Fatalf("messages on the survivor: %d, want 6", n)
	}
	if n := b.count(t, `SELECT count(*) FROM conversations WHERE status = 'open'`); n != 2 {
		t.Fatalf("open conversations: %d, want 2", n)
	}
	if n := b.count(t, `SELECT count(*) FROM outbox WHERE type = $1`, engine.TypeDeskMessageAdded); n != 7 {
		t.Fatalf("message.added: %d, want 7", n)
	}
	b.checkMessages(t)
}

// A conversation that gains a channel is announced once, with the channel.
func TestChannelAddedIsAnnounced(t *testing.T) {
	t.Parallel()
	for _, split := range []bool{false, true} { // in two batches, or one event a batch
		b := setup(t)
		evs := []bus.Delivery{msg(t, "wechatkf:1", "wechatkf", t0, openid, phone), msg(t, "wechatkf:2", "wechatkf", t0.Add(time.Second), openid),
			msg(t, "sms:1", "sms", t0.Add(time.Minute), phone), msg(t, "sms:2", "sms", t0.Add(2*time.Minute), phone)}
		if split {
			for _, d := range evs {
				b.apply(t, d)
			}
		} else {
			b.apply(t, evs[:2]...)
			b.apply(t, evs[2:]...)
		}
		var change string
		if err := b.pool.QueryRow(context.Background(), `SELECT data->>'change' FROM outbox WHERE type = $1`, engine.TypeDeskConversationUpdated).Scan(&change); err != nil {
			t.Fatalf("one event a batch %v: %v", split, err)
		}
		if change != "channel added: sms" {
			t.Fatalf("one event a batch %v: change %q", split, change)
		}
	}
}

// Workers applying multi-event batches that link the same customers in opposite orders, at the
// same time: no deadlock surfaces as an error, and they end on one customer.
func TestConcurrentBatches(t *testing.T) {
	t.Parallel()
	b := setup(t)
	en := b.en
	const n = 16
	ph := func(i int) id { return id{"phone", fmt.Sprintf("+86139000002%02d", i)} }
	var seed []bus.Delivery
	for i := range n {
		seed = append(seed, msg(t, fmt.Sprintf("sms:seed%d", i), "sms", t0.Add(time.Duration(i)*time.Second), ph(i)))
	}
	b.apply(t, seed...)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for round := range 4 {
				var batch []bus.Delivery
				for j := range 10 {
					a, c := r.IntN(n), r.IntN(n)
					if w%2 == 1 {
						a, c = c, a
					}
					batch = append(batch, msg(t, fmt.Sprintf("webchat:w%d-%d-%d", w, round, j), "webchat", t0.Add(time.Hour), ph(a), ph(c)))
				}
				for _, err := range en.ApplyBatch(context.Background(), batch) {
					if err != nil {
						errs <- err
					}
				}
			}
		})
	}
	wg.Wait()
	// Join whatever the random pairs left apart.
	var chain []bus.Delivery
	for i := range n - 1 {
		chain = append(chain, msg(t, fmt.Sprintf("webchat:chain%d", i), "webchat", t0.Add(2*time.Hour), ph(i), ph(i+1)))
	}
	b.apply(t, chain...)
	close(errs)
	for err := range errs {
		t.Errorf("concurrent batch: %v", err)
	}
	if c := b.count(t, `SELECT count(*) FROM customers WHERE merged_into IS NULL`); c != 1 {
		t.Fatalf("live customers: %d, graph %s", c, b.graph(t))
	}
	if c := b.count(t, `SELECT count(*) FROM customer_merges`); c != n-1 {
		t.Fatalf("merges recorded: %d, want %d", c, n-1)
	}
	if c := b.count(t, `SELECT count(*) FROM conversations WHERE status = 'open'`); c != 1 {
		t.Fatalf("open conversations: %d", c)
	}
	if c := b.count(t, `SELECT count(*) FROM messages`); c != n+4*4*10+n-1 {
		t.Fatalf("messages: %d", c)
	}
	b.checkMessages(t)
}

// A batch does not wait for a customer another transaction holds before applying the events of
// the other customers: they commit first, and the held customer's events follow once it is free.
func TestBatchSkipsCustomersHeldElsewhere(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	x, y := id{"phone", "+8613900000301"}, id{"phone", "+8613900000302"}
	b.apply(t, msg(t, "sms:x1", "sms", t0, x), msg(t, "sms:y1", "sms", t0, y))
	held := b.customerOf(t, "phone", x.value)
	tx := b.hold(t, held)
	done := make(chan []error, 1)
	go func() {
		done <- b.en.ApplyBatch(ctx, []bus.Delivery{
			msg(t, "sms:x2", "sms", t0.Add(time.Minute), x),
			msg(t, "sms:y2", "sms", t0.Add(time.Minute), y),
			msg(t, "sms:x3", "sms", t0.Add(2*time.Minute), x, id{"email", "x@example.com"}),
			msg(t, "sms:z1", "sms", t0.Add(2*time.Minute), id{"phone", "+8613900000303"}),
		})
	}()
	for deadline := time.Now().Add(30 * time.Second); ; {
		if b.count(t, `SELECT count(*) FROM messages WHERE event_id IN ('sms:y2', 'sms:z1')`) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the events of the free customers were not applied while another one was held")
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case errs := <-done:
		t.Fatalf("the batch finished while its customer was held: %v", errs)
	default:
	}
	if n := b.count(t, `SELECT count(*) FROM messages WHERE event_id IN ('sms:x2', 'sms:x3')`); n != 0 {
		t.Fatalf("%d events of the held customer applied", n)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	for i, err := range <-done {
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	if n := b.count(t, `SELECT count(*) FROM messages WHERE customer_id = $1`, held); n != 3 {
		t.Fatalf("messages of the held customer: %d, want 3", n)
	}
	if c := b.customerOf(t, "email", "x@example.com"); c != held {
		t.Fatalf("the email went to %s, want %s", c, held)
	}
	// In order: x2's message.added before x3's.
	var order string
	if err := b.pool.QueryRow(ctx, `SELECT string_agg(data->'message'->>'event_id', ' ' ORDER BY seq) FROM outbox
		WHERE type = $1 AND data->'message'->>'customer_id' = $2`, engine.TypeDeskMessageAdded, held).Scan(&order); err != nil {
		t.Fatal(err)
	}
	if order != "sms:x1 sms:x2 sms:x3" {
		t.Fatalf("desk order %q", order)
	}
}

// BenchmarkApplyBatch applies a workload over 2,000 customers (new customers, cross-channel links
// and a few merges, idle gaps, redeliveries) in batches of 256 on one connection; ns/op is per
// event. "mixed" adds 8 % outbound statuses.
func BenchmarkApplyBatch(b *testing.B) {
	for _, m := range []struct {
		name string
		mix  mix
	}{{"messages", mix{customers: 2000, links: 0.04}}, {"mixed", mix{customers: 2000, links: 0.04, statuses: 0.08}}} {
		b.Run(m.name+"/batched", func(b *testing.B) {
			bd := setup(b)
			evs := workload(b, 1, b.N, m.mix)
			b.ResetTimer()
			for rest := evs; len(rest) > 0; {
				n := min(len(rest), 256)
				for _, err := range bd.en.ApplyBatch(context.Background(), rest[:n]) {
					if err != nil {
						b.Fatal(err)
					}
				}
				rest = rest[n:]
			}
		})
	}
}

// Another transaction attaches an identity this batch found new, between this batch's lookup and
// its writes: the unique key refuses the insert, and only the round is undone and run again on a
// fresh lookup — the message joins the customer that now owns the identity, and the transaction
// is not run again.
func TestRoundRedoneAfterIdentityConflict(t *testing.T) {
	t.Parallel()
	b := setup(t)
	other := engine.New(b.pool, engine.Config{IdleTimeout: 24 * time.Hour, DefaultRegion: "CN"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	phone := id{"phone", "+8613900000777"}
	var once sync.Once
	engine.SetBeforeWrite(b.en, func() {
		once.Do(func() {
			// Commits while the batch below holds its snapshot, in which the phone is new.
			for _, err := range other.ApplyBatch(context.Background(), []bus.Delivery{msg(t, "sms:first", "sms", t0, phone)}) {
				if err != nil {
					t.Errorf("the other transaction: %v", err)
				}
			}
		})
	})
	for _, err := range b.en.ApplyBatch(context.Background(), []bus.Delivery{
		msg(t, "webchat:1", "webchat", t0.Add(time.Minute), id{"web_visitor", "v-conflict"}, phone),
	}) {
		if err != nil {
			t.Fatalf("batch: %v", err)
		}
	}
	if rounds, txs := engine.Retries(b.en); rounds != 1 || txs != 0 {
		t.Fatalf("rounds redone %d, transactions run again %d; want 1 and 0", rounds, txs)
	}
	if c := b.count(t, `SELECT count(*) FROM customers WHERE merged_into IS NULL`); c != 1 {
		t.Fatalf("live customers: %d, graph %s", c, b.graph(t))
	}
	if c := b.count(t, `SELECT count(DISTINCT customer_id) FROM identities WHERE value IN ('+8613900000777', 'v-conflict')`); c != 1 {
		t.Fatalf("the phone and the visitor belong to %d customers, graph %s", c, b.graph(t))
	}
	if c := b.count(t, `SELECT count(*) FROM messages`); c != 2 {
		t.Fatalf("messages: %d", c)
	}
	b.checkMessages(t)
}

// A status of a stored reply and, after it in the same batch, a merge that moves that reply's
// conversation: the status's desk event names the conversation the reply was in when the status
// came, as applying them one by one does (the recorded store).
func TestStatusUpdateThenMergeInOneBatch(t *testing.T) {
	t.Parallel()
	wechat, phone := id{"wechat_openid", "o-merge"}, id{"phone", "+8613900000001"}
	got := setup(t)
	got.apply(t,
		msg(t, "sms:1", "sms", t0, phone), // the older customer
		msg(t, "wechat:1", "wechatkf", t0.Add(time.Minute), wechat),
		status(t, "status:1", "wechatkf", "out-1", t0.Add(2*time.Minute), &wechat),
	)
	got.apply(t,
		statusOf(t, "status:2", "wechatkf", "out-1", "read", t0.Add(3*time.Minute), &wechat, false),
		msg(t, "wechat:2", "wechatkf", t0.Add(4*time.Minute), wechat, phone), // merges the two customers
	)
	if got.count(t, `SELECT count(*) FROM customer_merges`) != 1 {
		t.Fatal("no merge")
	}
	golden(t, "status-then-merge", got)
}

var update = flag.Bool("update", false, "record the golden files in testdata again")

// golden fails t unless b holds the store recorded in testdata/<name>.golden: the store, the
// outbox, and the order of each identity's desk events. With -update it records them.
func golden(t *testing.T, name string, b *bundle) {
	t.Helper()
	dump, out, order := state(t, b)
	got := "# store\n" + dump + "# outbox\n" + out + "\n# order of each identity's desk events\n" + order + "\n"
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update records it)", err)
	}
	if got != string(want) {
		t.Fatalf("the store differs from %s: %s", path, firstDiff(string(want), got))
	}
}

// Two lanes get the first news of the same replies at once (a connector's statuses split over
// partitions), half of them to recipients the store does not know: every reply is stored once,
// on its customer's conversation, with one message.added, whichever lane records it; the other
// lane's status is an update of it.
func TestConcurrentFirstNews(t *testing.T) {
	t.Parallel()
	b := setup(t)
	en := b.en
	const n = 40
	ph := func(i int) id { return id{"phone", fmt.Sprintf("+86139000003%02d", i)} }
	for i := 0; i < n; i += 2 { // the others are new customers, created by whichever lane comes first
		b.apply(t, msg(t, fmt.Sprintf("sms:in%d", i), "sms", t0.Add(time.Duration(i)*time.Second), ph(i)))
	}
	// Both lanes' first rounds write at once: neither sees what the other records.
	var arrived sync.WaitGroup
	arrived.Add(2)
	var calls atomic.Int32
	engine.SetBeforeWrite(en, func() {
		if calls.Add(1) <= 2 {
			arrived.Done()
			arrived.Wait()
		}
	})
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for lane := range 2 {
		wg.Go(func() {
			var batch []bus.Delivery
			for i := range n {
				to := ph(i)
				batch = append(batch, statusOf(t, fmt.Sprintf("status:%d-%d", lane, i), "sms", fmt.Sprintf("reply-%d", i),
					[]string{"sent", "delivered"}[lane], t0.Add(time.Hour+time.Duration(lane)*time.Second), &to, true))
			}
			for _, err := range en.ApplyBatch(context.Background(), batch) {
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("lane: %v", err)
	}
	if c := b.count(t, `SELECT count(*) FROM messages WHERE direction = 'outbound' AND status = 'delivered'`); c != n {
		t.Errorf("replies stored with their latest status: %d, want %d", c, n)
	}
	if c := b.count(t, `SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id
		WHERE m.direction = 'outbound' AND c.customer_id = m.customer_id AND c.first_response_at IS NOT NULL`); c != n {
		t.Errorf("replies on their customer's conversation, with its first response: %d, want %d", c, n)
	}
	if c := b.count(t, `SELECT count(*) FROM outbox WHERE type = $1 AND data->'message'->>'direction' = 'outbound'`, engine.TypeDeskMessageAdded); c != n {
		t.Errorf("message.added for replies: %d, want %d", c, n)
	}
	if c := b.count(t, `SELECT count(*) FROM customers`); c != n {
		t.Errorf("customers: %d, want %d", c, n)
	}
	if rounds, txs := engine.Retries(en); rounds+txs == 0 {
		t.Error("the lanes never collided")
	}
}

// toolResult builds a tool connector's result event about conv.
func toolResult(t testing.TB, eventID, typ string, at time.Time, data map[string]any) bus.Delivery {
	t.Helper()
	e, err := event.New(typ, "/connectors/tool", data, event.WithID(eventID), event.WithTime(at), event.WithCorrelationID("req-"+eventID))
	if err != nil {
		t.Fatal(err)
	}
	return bus.Delivery{Event: e}
}

// summary builds the assist connector's summary of conv's close at closedAt.
func summary(t testing.TB, conv string, closedAt, at time.Time, source string) bus.Delivery {
	t.Helper()
	data := map[string]any{"conversation_id": conv, "closed_at": closedAt, "source": source, "business_type": "order", "language": "zh",
		"summary": "客户 138****8000 询问订单 A-1 的退款进度（" + source + "）"}
	if source == "llm" {
		data["provenance"] = map[string]any{"provider": "bailian", "model": "qwen-plus", "prompt_template_id": "assist.summary.v1",
			"prompt_template_sha256": strings.Repeat("ab", 32), "input_event_ids": []string{"sms:1"}, "latency_ms": 420, "text": "…"}
	}
	return toolResult(t, fmt.Sprintf("assist:summary:%s:%d", conv, closedAt.UnixMilli()), engine.TypeSummaryCompleted, at, data)
}

// The events that are not messages or statuses — desk commands (close, reopen, unmerge), CRM
// results that link identities (and merge) and fill the profile, other tools' results — mixed
// with messages in batches of every size, give the store recorded in testdata.
func TestCommandsGolden(t *testing.T) {
	t.Parallel()
	for _, size := range []int{1, 3, 100} {
		t.Run(fmt.Sprint("batch", size), func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			visitor, email := id{"web_visitor", "v-42"}, id{"email", "li.lei@example.com"}
			conv := func(k id) string { // the customer's open conversation
				var c string
				if err := b.pool.QueryRow(context.Background(), `SELECT c.id::text FROM conversations c JOIN identities i ON i.customer_id = c.customer_id
					WHERE i.kind = $1 AND i.value = $2 AND c.status = 'open'`, k.kind, k.value).Scan(&c); err != nil {
					t.Fatalf("open conversation of %s: %v", k.value, err)
				}
				return c
			}
			cust := func(k id) string { return b.customerOf(t, k.kind, k.value) }
			var pending []bus.Delivery
			send := func(ds ...bus.Delivery) {
				pending = append(pending, ds...)
				for len(pending) >= size {
					b.apply(t, pending[:size]...)
					pending = pending[size:]
				}
			}
			flush := func() { b.apply(t, pending...); pending = nil }
			send(msg(t, "wechatkf:1", "wechatkf", t0, openid), msg(t, "sms:1", "sms", t0.Add(time.Minute), phone),
				msg(t, "webchat:1", "webchat", t0.Add(2*time.Minute), visitor))
			flush()
			a, c2, c3 := conv(openid), conv(id{"phone", phoneN}), conv(visitor)
			send(
				command(t, "desk:close-1", engine.TypeCloseRequested, t0.Add(3*time.Minute), map[string]any{"conversation_id": c2, "reason": "resolved"}),
				command(t, "desk:close-again", engine.TypeCloseRequested, t0.Add(3*time.Minute), map[string]any{"conversation_id": c2}),
				toolResult(t, "oms:1", "omni.tool.oms.order.completed", t0.Add(4*time.Minute), map[string]any{"conversation_id": a,
					"orders": []any{map[string]any{"id": "A-1", "phone": "13800138000"}}}),
				toolResult(t, "oms:2", "omni.tool.oms.order.failed", t0.Add(4*time.Minute), map[string]any{"conversation_id": c3, "error": "timeout"}),
				toolResult(t, "oms:3", "omni.tool.oms.order.completed", t0.Add(4*time.Minute), map[string]any{"note": "no conversation"}),
				// The summary of close-1 (twice: a redelivery), then one of an older close: it changes nothing.
				summary(t, c2, t0.Add(3*time.Minute), t0.Add(3*time.Minute+20*time.Second), "llm"),
				summary(t, c2, t0.Add(3*time.Minute), t0.Add(3*time.Minute+20*time.Second), "llm"),
				summary(t, c2, t0.Add(time.Minute), t0.Add(4*time.Minute), "rules"),
				command(t, "desk:reopen-1", engine.TypeReopenRequested, t0.Add(5*time.Minute), map[string]any{"conversation_id": c2}),
				toolResult(t, "crm:1", engine.TypeCRMLookupCompleted, t0.Add(6*time.Minute), map[string]any{"customer_id": cust(visitor),
					"conversation_id": c3, "query": map[string]string{"kind": "web_visitor", "value": "v-42"}, "provider": "salesforce", "found": true,
					"identities": []map[string]string{{"kind": "email", "value": "Li.Lei@Example.com"}, {"kind": "crm_id", "value": "003X1"}},
					"profile":    map[string]string{"name": "Li Lei", "tier": "gold"}}),
				toolResult(t, "crm:2", engine.TypeCRMLookupFailed, t0.Add(7*time.Minute), map[string]any{"customer_id": cust(openid),
					"conversation_id": a, "query": map[string]string{"kind": "phone", "value": phoneN}, "provider": "salesforce", "found": false,
					"error_code": "timeout", "error": "vendor timed out", "fallback": map[string]any{"link": "https://crm.example/manual"}}),
				msg(t, "wechatkf:2", "wechatkf", t0.Add(8*time.Minute), openid, phone),              // merges B into A
				msg(t, "webchat:2", "webchat", t0.Add(9*time.Minute), visitor, email, phone),        // merges C into A
				msg(t, "sms:2", "sms", t0.Add(10*time.Minute), phone),                               // on the survivor
				status(t, "status:1", "sms", "out-1", t0.Add(11*time.Minute), &id{"phone", phoneN}), // a reply
			)
			flush()
			// The CRM record of the merged customer names it, not the survivor: it lands on the survivor.
			send(toolResult(t, "crm:3", engine.TypeCRMLookupCompleted, t0.Add(12*time.Minute), map[string]any{"customer_id": cust(openid),
				"query": map[string]string{"kind": "phone", "value": phoneN}, "provider": "u9", "found": true,
				"identities": []map[string]string{{"kind": "member_id", "value": "M-1001"}}, "profile": map[string]string{"tier": "silver", "city": "杭州"}}))
			flush()
			merges := b.strings(t, `SELECT id::text FROM customer_merges ORDER BY at DESC, id`)
			if len(merges) != 2 {
				t.Fatalf("merges: %d", len(merges))
			}
			for i, m := range merges {
				send(command(t, fmt.Sprintf("desk:unmerge-%d", i), engine.TypeUnmergeRequested, t0.Add(time.Hour), map[string]any{"merge_id": m, "reason": "wrong match"}),
					msg(t, fmt.Sprintf("sms:after-%d", i), "sms", t0.Add(time.Hour+time.Duration(i+1)*time.Minute), phone))
			}
			send(command(t, "desk:unmerge-again", engine.TypeUnmergeRequested, t0.Add(2*time.Hour), map[string]any{"merge_id": merges[0]}),
				msg(t, "wechatkf:3", "wechatkf", t0.Add(30*time.Hour), openid)) // after the idle timeout
			flush()
			if _, err := b.en.SweepIdle(context.Background(), t0.Add(100*time.Hour)); err != nil {
				t.Fatal(err)
			}
			b.checkMessages(t)
			golden(t, "commands", b)
		})
	}
}

// A CRM result whose record links an identity of a customer another transaction holds waits for
// it (its round is left to the transaction that waits for locks) and then merges the two.
func TestCRMResultWaitsForHeldCustomer(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	x, y := id{"phone", "+8613900000401"}, id{"phone", "+8613900000402"}
	b.apply(t, msg(t, "sms:x", "sms", t0, x), msg(t, "sms:y", "sms", t0.Add(time.Minute), y))
	named, held := b.customerOf(t, "phone", x.value), b.customerOf(t, "phone", y.value)
	tx := b.hold(t, held)
	done := make(chan []error, 1)
	go func() {
		done <- b.en.ApplyBatch(ctx, []bus.Delivery{toolResult(t, "crm:1", engine.TypeCRMLookupCompleted, t0.Add(time.Hour), map[string]any{
			"customer_id": named, "query": map[string]string{"kind": "phone", "value": x.value}, "provider": "salesforce", "found": true,
			"identities": []map[string]string{{"kind": "phone", "value": y.value}}})})
	}()
	time.Sleep(200 * time.Millisecond)
	select {
	case errs := <-done:
		t.Fatalf("the result was applied while a customer it merges was held: %v", errs)
	default:
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	for i, err := range <-done {
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	if c := b.customerOf(t, "phone", y.value); c != named {
		t.Fatalf("the linked phone is on %s, want %s", c, named)
	}
	if n := b.count(t, `SELECT count(*) FROM customer_merges`); n != 1 {
		t.Fatalf("merges: %d", n)
	}
	b.checkMessages(t)
}

// hold locks customer's row in a transaction of its own, as another worker would; the caller
// rolls it back (and so does the test's end).
func (b *bundle) hold(t *testing.T, customer string) pgx.Tx {
	t.Helper()
	ctx := context.Background()
	tx, err := b.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(ctx) })
	if _, err := tx.Exec(ctx, `SELECT 1 FROM customers WHERE id = $1 FOR UPDATE`, customer); err != nil {
		t.Fatal(err)
	}
	return tx
}
