package engine_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/pgtest"
	"github.com/omnibus-dev/omnibus/services/unifier/internal/engine"
	"github.com/omnibus-dev/omnibus/services/unifier/internal/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.Wrap(m)) }

var t0 = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

type bundle struct {
	pool *pgxpool.Pool
	en   *engine.Engine
}

func setup(t testing.TB) *bundle {
	t.Helper()
	pool := pgtest.NewDB(t, pgtest.WithMigrations("unifier", store.Migrate))
	en := engine.New(pool, engine.Config{IdleTimeout: 24 * time.Hour, DefaultRegion: "CN"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return &bundle{pool: pool, en: en}
}

type id struct{ kind, value string }

// msg builds an inbound message event from channel, sent by from, carrying extra identities.
func msg(t testing.TB, eventID, channel string, at time.Time, from id, extra ...id) bus.Delivery {
	t.Helper()
	ids := make([]map[string]string, len(extra))
	for i, x := range extra {
		ids[i] = map[string]string{"kind": x.kind, "value": x.value}
	}
	data := map[string]any{
		"channel": channel, "channel_message_id": eventID, "from": map[string]string{"kind": from.kind, "value": from.value},
		"message": map[string]any{"type": "text", "text": "hello from " + channel}, "sent_at": at,
	}
	if len(ids) > 0 {
		data["identities"] = ids
	}
	e, err := event.New(engine.TypeMessageReceived, "/connectors/"+channel, data, event.WithID(eventID), event.WithTime(at),
		event.WithPartitionKey(from.kind+":"+from.value))
	if err != nil {
		t.Fatal(err)
	}
	return bus.Delivery{Event: e, Subject: "omni.in." + channel + ".message"}
}

func command(t testing.TB, eventID, typ string, at time.Time, data map[string]any) bus.Delivery {
	t.Helper()
	e, err := event.New(typ, "/desk", data, event.WithID(eventID), event.WithTime(at))
	if err != nil {
		t.Fatal(err)
	}
	return bus.Delivery{Event: e}
}

func (b *bundle) apply(t testing.TB, ds ...bus.Delivery) {
	t.Helper()
	for i, err := range b.en.ApplyBatch(context.Background(), ds) {
		if err != nil {
			t.Fatalf("event %d (%s): %v", i, ds[i].Event.ID(), err)
		}
	}
}

func (b *bundle) count(t testing.TB, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := b.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// strings returns the one text column of sql's rows.
func (b *bundle) strings(t testing.TB, sql string, args ...any) []string {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

func (b *bundle) customerOf(t testing.TB, kind, value string) string {
	t.Helper()
	var c string
	if err := b.pool.QueryRow(context.Background(), `SELECT customer_id::text FROM identities WHERE kind = $1 AND value = $2`, kind, value).Scan(&c); err != nil {
		t.Fatalf("identity %s:%s: %v", kind, value, err)
	}
	return c
}

// graph is the canonical customer graph: the sets of identities that share a customer.
func (b *bundle) graph(t testing.TB) string {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), `SELECT string_agg(kind || ':' || value, ',' ORDER BY kind, value)
		FROM identities GROUP BY customer_id ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var groups []string
	for rows.Next() {
		var g string
		_ = rows.Scan(&g)
		groups = append(groups, g)
	}
	return strings.Join(groups, " | ")
}

func (b *bundle) outboxTypes(t testing.TB) map[string]int {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), `SELECT type, count(*) FROM outbox GROUP BY type`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var typ string
		var n int
		_ = rows.Scan(&typ, &n)
		out[typ] = n
	}
	return out
}

var (
	openid = id{"wechat_openid", "oWx-customer-1"}
	phone  = id{"phone", "138 0013 8000"}
	phoneN = "+8613800138000"
)

func TestFirstMessage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.apply(t, msg(t, "wechatkf:m1", "wechatkf", t0, openid))
	if n := b.count(t, `SELECT count(*) FROM customers`); n != 1 {
		t.Fatalf("customers: %d", n)
	}
	if n := b.count(t, `SELECT count(*) FROM conversations WHERE status = 'open'`); n != 1 {
		t.Fatalf("open conversations: %d", n)
	}
	if n := b.count(t, `SELECT count(*) FROM messages WHERE event_id = 'wechatkf:m1' AND direction = 'inbound'`); n != 1 {
		t.Fatalf("messages: %d", n)
	}
	types := b.outboxTypes(t)
	for _, want := range []string{engine.TypeDeskConversationOpened, engine.TypeDeskMessageAdded, engine.TypeDeskCustomerUpdated} {
		if types[want] != 1 {
			t.Errorf("outbox %s: %d (all: %v)", want, types[want], types)
		}
	}
	if types[engine.TypeCRMLookupRequested] != 0 {
		t.Errorf("CRM lookup requested for an openid-only customer")
	}
}

func TestCrossChannelOneConversation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// WeChat customer who shares a phone, then texts by SMS from that phone (another format).
	b.apply(t, msg(t, "wechatkf:m1", "wechatkf", t0, openid, phone))
	b.apply(t, msg(t, "sms:u1", "sms", t0.Add(time.Hour), id{"phone", "+86-138-0013-8000"}))
	if b.customerOf(t, "phone", phoneN) != b.customerOf(t, openid.kind, openid.value) {
		t.Fatal("phone and openid on different customers")
	}
	var channels []string
	if err := b.pool.QueryRow(context.Background(), `SELECT channels FROM conversations WHERE status = 'open'`).Scan(&channels); err != nil {
		t.Fatal(err)
	}
	if strings.Join(channels, ",") != "wechatkf,sms" {
		t.Fatalf("channels %v", channels)
	}
	if n := b.count(t, `SELECT count(*) FROM conversations`); n != 1 {
		t.Fatalf("conversations: %d", n)
	}
	if b.outboxTypes(t)[engine.TypeCRMLookupRequested] != 1 {
		t.Error("the newly linked phone was not sent to the CRM")
	}
}

func TestRedeliveryChangesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	d := msg(t, "wechatkf:m1", "wechatkf", t0, openid, phone)
	b.apply(t, d)
	before := b.count(t, `SELECT count(*) FROM outbox`)
	b.apply(t, d, d)
	b.apply(t, msg(t, "wechatkf:m1", "wechatkf", t0, openid, phone)) // same id, rebuilt event
	if n := b.count(t, `SELECT count(*) FROM messages`); n != 1 {
		t.Fatalf("messages after redelivery: %d", n)
	}
	if n := b.count(t, `SELECT count(*) FROM outbox`); n != before {
		t.Fatalf("outbox grew on redelivery: %d -> %d", before, n)
	}
}

func TestIdleTimeoutOpensLinkedConversation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.apply(t, msg(t, "sms:1", "sms", t0, phone))
	b.apply(t, msg(t, "sms:2", "sms", t0.Add(25*time.Hour), phone))
	var closedReason string
	var closedAt time.Time
	if err := b.pool.QueryRow(context.Background(), `SELECT close_reason, closed_at FROM conversations WHERE status = 'closed'`).Scan(&closedReason, &closedAt); err != nil {
		t.Fatal(err)
	}
	if closedReason != "idle" || !closedAt.Equal(t0.Add(24*time.Hour)) {
		t.Errorf("closed %s at %s", closedReason, closedAt)
	}
	if n := b.count(t, `SELECT count(*) FROM conversations c JOIN conversations p ON c.previous_id = p.id WHERE c.status = 'open'`); n != 1 {
		t.Fatal("new conversation not linked to the previous one")
	}
	// The sweeper closes by wall clock with the same deterministic closing time.
	n, err := b.en.SweepIdle(context.Background(), t0.Add(100*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("sweep: %d %v", n, err)
	}
}

func TestCloseAndReopenCommands(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.apply(t, msg(t, "sms:1", "sms", t0, phone))
	var conv string
	_ = b.pool.QueryRow(context.Background(), `SELECT id::text FROM conversations`).Scan(&conv)
	b.apply(t, command(t, "desk:c1", engine.TypeCloseRequested, t0.Add(time.Minute), map[string]any{"conversation_id": conv, "reason": "resolved"}))
	if n := b.count(t, `SELECT count(*) FROM conversations WHERE status = 'closed' AND close_reason = 'resolved'`); n != 1 {
		t.Fatal("not closed")
	}
	b.apply(t, command(t, "desk:r1", engine.TypeReopenRequested, t0.Add(2*time.Minute), map[string]any{"conversation_id": conv}))
	if n := b.count(t, `SELECT count(*) FROM conversations WHERE status = 'open'`); n != 1 {
		t.Fatal("not reopened")
	}
	errs := b.en.ApplyBatch(context.Background(), []bus.Delivery{command(t, "desk:c2", engine.TypeCloseRequested, t0, map[string]any{"conversation_id": "00000000-0000-0000-0000-000000000001"})})
	if errs == nil || errs[0] == nil {
		t.Fatal("closing an unknown conversation must fail")
	}
}

// A chain of five identities across three channels joins three customers into one; undoing the
// merges restores them.
func TestMergeChainAndUnmerge(t *testing.T) {
	t.Parallel()
	b := setup(t)
	visitor := id{"web_visitor", "v-42"}
	email := id{"email", "Li.Lei@Example.com"}
	member := id{"member_id", "M-1001"}
	b.apply(t,
		msg(t, "wechatkf:1", "wechatkf", t0, openid),                   // customer A
		msg(t, "sms:1", "sms", t0.Add(time.Minute), phone),             // customer B
		msg(t, "webchat:1", "webchat", t0.Add(2*time.Minute), visitor), // customer C
	)
	if n := b.count(t, `SELECT count(*) FROM customers WHERE merged_into IS NULL`); n != 3 {
		t.Fatalf("live customers before: %d", n)
	}
	a := b.customerOf(t, openid.kind, openid.value)
	b.apply(t, msg(t, "wechatkf:2", "wechatkf", t0.Add(3*time.Minute), openid, phone))               // joins A+B
	b.apply(t, msg(t, "webchat:2", "webchat", t0.Add(4*time.Minute), visitor, email, phone, member)) // joins C into A
	if n := b.count(t, `SELECT count(*) FROM customers WHERE merged_into IS NULL`); n != 1 {
		t.Fatalf("live customers after the chain: %d", n)
	}
	for _, x := range []id{openid, visitor, {"email", "li.lei@example.com"}, {"phone", phoneN}, member} {
		if got := b.customerOf(t, x.kind, x.value); got != a {
			t.Fatalf("%s on %s, want the oldest customer %s", x.kind, got, a)
		}
	}
	if n := b.count(t, `SELECT count(*) FROM conversations WHERE status = 'open'`); n != 1 {
		t.Fatalf("open conversations after merges: %d", n)
	}
	if n := b.count(t, `SELECT count(*) FROM messages WHERE customer_id::text = $1`, a); n != 5 {
		t.Fatalf("messages on the merged customer: %d", n)
	}
	if types := b.outboxTypes(t); types[engine.TypeDeskCustomerMerged] != 2 {
		t.Fatalf("merged desk events: %v", types)
	}
	merged := b.graph(t)
	b.checkMessages(t)

	// Undo both merges, newest first.
	merges := b.strings(t, `SELECT id::text FROM customer_merges ORDER BY at DESC`)
	if len(merges) != 2 {
		t.Fatalf("merges recorded: %d", len(merges))
	}
	for i, m := range merges {
		b.apply(t, command(t, fmt.Sprintf("desk:unmerge-%d", i), engine.TypeUnmergeRequested, t0.Add(time.Hour), map[string]any{"merge_id": m}))
	}
	b.apply(t, command(t, "desk:unmerge-again", engine.TypeUnmergeRequested, t0.Add(time.Hour), map[string]any{"merge_id": merges[0]})) // no-op
	if n := b.count(t, `SELECT count(*) FROM customers WHERE merged_into IS NULL`); n != 3 {
		t.Fatalf("live customers after unmerge: %d", n)
	}
	if b.customerOf(t, "phone", phoneN) == a || b.customerOf(t, visitor.kind, visitor.value) == a {
		t.Fatalf("identities not restored: %s", b.graph(t))
	}
	if n := b.count(t, `SELECT count(*) FROM conversations WHERE status = 'open'`); n != 3 {
		t.Fatalf("open conversations after unmerge: %d", n)
	}
	for _, c := range []id{phone, visitor} {
		cust := b.customerOf(t, c.kind, map[string]string{"phone": phoneN}[c.kind]+map[bool]string{true: c.value}[c.kind != "phone"])
		if n := b.count(t, `SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE m.customer_id::text = $1 AND c.customer_id::text = $1`, cust); n == 0 {
			t.Errorf("customer %s has no messages back", cust)
		}
	}
	if b.graph(t) == merged {
		t.Fatal("graph unchanged by unmerge")
	}
	b.checkMessages(t)
	if n := b.count(t, `SELECT count(*) FROM outbox WHERE type = $1`, engine.TypeDeskCustomerUnmerged); n != 2 {
		t.Fatalf("unmerged desk events: %d", n)
	}
}

// Random interleavings and duplicates of the same events converge to the same customer graph.
func TestConvergesWhateverTheOrder(t *testing.T) {
	t.Parallel()
	events := func(t testing.TB) []bus.Delivery {
		return []bus.Delivery{
			msg(t, "wechatkf:1", "wechatkf", t0, openid),
			msg(t, "wechatkf:2", "wechatkf", t0.Add(time.Minute), openid, phone),
			msg(t, "sms:1", "sms", t0.Add(2*time.Minute), phone),
			msg(t, "sms:2", "sms", t0.Add(3*time.Minute), id{"phone", "13900139000"}),
			msg(t, "webchat:1", "webchat", t0.Add(4*time.Minute), id{"web_visitor", "v1"}, id{"phone", "0086 139 0013 9000"}),
			msg(t, "webchat:2", "webchat", t0.Add(5*time.Minute), id{"web_visitor", "v2"}, id{"email", "a@b.cn"}),
			msg(t, "wechatkf:3", "wechatkf", t0.Add(6*time.Minute), id{"wechat_openid", "o2"}, id{"email", "A@B.CN"}),
		}
	}
	want := ""
	for run := range 6 {
		b := setup(t)
		evs := events(t)
		r := rand.New(rand.NewPCG(uint64(run), 7))
		// Duplicates, then a shuffle.
		for range 3 {
			evs = append(evs, evs[r.IntN(len(evs))])
		}
		r.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
		for len(evs) > 0 { // random batch sizes
			n := 1 + r.IntN(len(evs))
			b.apply(t, evs[:n]...)
			evs = evs[n:]
		}
		got := b.graph(t)
		if want == "" {
			want = got
			if strings.Count(want, "|") != 2 {
				t.Fatalf("expected three customers, got %s", want)
			}
		} else if got != want {
			t.Fatalf("run %d converged to\n%s\nwant\n%s", run, got, want)
		}
		if n := b.count(t, `SELECT count(*) FROM messages`); n != 7 {
			t.Fatalf("run %d: %d messages, want 7", run, n)
		}
		b.checkMessages(t)
		if n := b.count(t, `SELECT count(*) FROM customers c WHERE merged_into IS NULL AND (SELECT count(*) FROM conversations WHERE customer_id = c.id AND status = 'open') <> 1`); n != 0 {
			t.Fatalf("run %d: %d live customers without exactly one open conversation", run, n)
		}
	}
}

// Replicas merging the same customers at once end consistent, with no deadlock.
func TestConcurrentMerges(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const n = 12
	// n customers, each known by one phone.
	var seed []bus.Delivery
	for i := range n {
		seed = append(seed, msg(t, fmt.Sprintf("sms:seed%d", i), "sms", t0.Add(time.Duration(i)*time.Second), id{"phone", fmt.Sprintf("+86139000000%02d", i)}))
	}
	b.apply(t, seed...)
	// Many writers link overlapping pairs, in opposite orders, at the same time.
	var wg sync.WaitGroup
	errs := make(chan error, 4*n)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n - 1 {
				a, c := i, i+1
				if w%2 == 1 {
					a, c = c, a
				}
				d := msg(t, fmt.Sprintf("webchat:w%d-%d", w, i), "webchat", t0.Add(time.Hour), id{"phone", fmt.Sprintf("+86139000000%02d", a)}, id{"phone", fmt.Sprintf("+86139000000%02d", c)})
				for _, err := range b.en.ApplyBatch(context.Background(), []bus.Delivery{d}) {
					if err != nil {
						errs <- err
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent apply: %v", err)
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
	if c := b.count(t, `SELECT count(DISTINCT customer_id) FROM identities`); c != 1 {
		t.Fatalf("identities on %d customers", c)
	}
	b.checkMessages(t)
	_ = sort.Strings
}

// A status older than the one a message has (statuses arrive out of order) changes nothing: the
// message keeps its newer status and appears on the desk once, not again as a new message.
func TestOutOfOrderStatusOfNewOutboundMessage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	to := id{"phone", "13800138000"}
	b.apply(t, status(t, "st-2", "sms", "reply-1", t0.Add(2*time.Second), &to))
	b.apply(t, status(t, "st-1", "sms", "reply-1", t0.Add(time.Second), &to))
	if n := b.count(t, `SELECT count(*) FROM messages WHERE event_id = 'reply-1' AND status_at = $1`, t0.Add(2*time.Second)); n != 1 {
		t.Fatalf("the message lost its newer status (%d rows)", n)
	}
	if got := b.outboxTypes(t)[engine.TypeDeskMessageAdded]; got != 1 {
		t.Fatalf("%d message.added for one outbound message", got)
	}
}
