package unifier_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/pgtest"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/services/unifier"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.Wrap(m)) }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// openPool connects to dbURL until the test ends.
func openPool(t *testing.T, dbURL string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// start runs one unifier instance until the test ends.
func start(t *testing.T, c *bus.Client, dbURL string, env map[string]string) {
	t.Helper()
	pool := openPool(t, dbURL)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- unifier.Run(ctx, service.Deps{Bus: c, DB: pool, Mux: http.NewServeMux(), Log: quiet(), Health: service.NewHealth(),
			Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("unifier stopped with %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("unifier did not stop")
		}
	})
}

func inbound(t testing.TB, id, channel, kind, value, text string, at time.Time, extra ...map[string]string) event.Event {
	t.Helper()
	data := map[string]any{"channel": channel, "channel_message_id": id, "from": map[string]string{"kind": kind, "value": value},
		"message": map[string]any{"type": "text", "text": text}, "sent_at": at}
	if len(extra) > 0 {
		data["identities"] = extra
	}
	e, err := event.New("omni.channel.message.received", "/connectors/"+channel, data,
		event.WithID(channel+":"+id), event.WithTime(at), event.WithPartitionKey(kind+":"+value))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func deskCount(t *testing.T, b *bustest.Bundle, typ string) int {
	t.Helper()
	return int(b.StoredCount(t, bus.StreamDesk, typ))
}

func TestEndToEndThroughTheBus(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(quiet()))
	start(t, b.Client, pgtest.NewDBURL(t), nil)
	ctx := context.Background()
	t0 := time.Now().UTC().Add(-time.Minute)
	wechat := inbound(t, "m1", "wechatkf", "wechat_openid", "oWx1", "我的快递到哪了？", t0, map[string]string{"kind": "phone", "value": "13800138000"})
	sms := inbound(t, "u1", "sms", "phone", "+86 138 0013 8000", "SF1234567890", t0.Add(time.Second))
	for _, e := range []event.Event{wechat, sms} {
		if err := b.Client.Publish(ctx, "omni.in."+e.Source()[len("/connectors/"):]+".message", e); err != nil {
			t.Fatal(err)
		}
	}
	// A replay of the first event after JetStream's duplicate window: a fresh Nats-Msg-Id.
	h, body, _ := event.Encode(wechat)
	h.Set("Nats-Msg-Id", "replayed-"+wechat.ID())
	if _, err := b.Client.JetStream().PublishMsg(ctx, &nats.Msg{Subject: "omni.in.wechatkf.message", Header: h, Data: body}); err != nil {
		t.Fatal(err)
	}
	bustest.WaitFor(t, 20*time.Second, "2 message.added desk events", func() bool { return deskCount(t, b, "omni.desk.message.added") == 2 })
	time.Sleep(300 * time.Millisecond) // let a wrongly duplicated event show up
	if n := deskCount(t, b, "omni.desk.message.added"); n != 2 {
		t.Fatalf("message.added events: %d, want 2 (the replay must change nothing)", n)
	}
	if n := deskCount(t, b, "omni.desk.conversation.opened"); n != 1 {
		t.Fatalf("conversation.opened events: %d, want 1 (WeChat then SMS is one conversation)", n)
	}
	if n := b.StoredCount(t, bus.StreamTool, "omni.tool.crm.lookup.requested"); n != 1 {
		t.Fatalf("CRM lookups requested: %d, want 1 (the new phone)", n)
	}
	events := b.Events(t, bus.StreamDesk, "omni.desk.message.added")
	var last struct {
		Conversation struct {
			Channels []string `json:"channels"`
		} `json:"conversation"`
	}
	if err := json.Unmarshal(events[1].Data(), &last); err != nil {
		t.Fatal(err)
	}
	// The two identities sit on different partitions: either may be applied first.
	if ch := fmt.Sprint(last.Conversation.Channels); ch != "[wechatkf sms]" && ch != "[sms wechatkf]" {
		t.Fatalf("channels on the desk event: %v", last.Conversation.Channels)
	}
}

// Three unifier replicas share one stream: every event is applied once, and each identity's
// messages reach the desk in the order they were sent.
func TestThreeReplicasKeepOrder(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(quiet()))
	dbURL := pgtest.NewDBURL(t)
	for i := range 3 {
		start(t, b.Connect(t, bus.WithLogger(quiet())), dbURL, map[string]string{"UNIFIER_REPLICAS": "3", "UNIFIER_REPLICA": strconv.Itoa(i), "UNIFIER_WORKERS": "2"})
	}
	const customers, perCustomer = 60, 10
	t0 := time.Now().UTC().Add(-time.Hour)
	var batch []bus.Outgoing
	for n := range perCustomer {
		for c := range customers {
			phone := fmt.Sprintf("+86139%08d", c)
			batch = append(batch, bus.Outgoing{Subject: "omni.in.sms.message",
				Event: inbound(t, fmt.Sprintf("c%d-n%d", c, n), "sms", "phone", phone, strconv.Itoa(n), t0.Add(time.Duration(n)*time.Second))})
		}
	}
	var wg sync.WaitGroup
	for i := 0; i < len(batch); i += 100 {
		wg.Add(1)
		go func(part []bus.Outgoing) {
			defer wg.Done()
			if err := b.Client.PublishBatch(context.Background(), part); err != nil {
				t.Error(err)
			}
		}(batch[i:min(i+100, len(batch))])
		wg.Wait() // publish parts in order: per-identity order is publish order
	}
	total := customers * perCustomer
	bustest.WaitFor(t, 60*time.Second, "every message on the desk", func() bool { return deskCount(t, b, "omni.desk.message.added") == total })
	if n := deskCount(t, b, "omni.desk.conversation.opened"); n != customers {
		t.Fatalf("conversations opened: %d, want %d", n, customers)
	}
	next := map[string]int{}
	for _, e := range b.Events(t, bus.StreamDesk, "omni.desk.message.added") {
		var d struct {
			Message struct {
				CustomerID string `json:"customer_id"`
				Body       struct {
					Text string `json:"text"`
				} `json:"body"`
			} `json:"message"`
		}
		if err := json.Unmarshal(e.Data(), &d); err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(d.Message.Body.Text)
		if n != next[d.Message.CustomerID] {
			t.Fatalf("customer %s: message %d reached the desk when %d was expected", d.Message.CustomerID, n, next[d.Message.CustomerID])
		}
		next[d.Message.CustomerID]++
	}
	if len(next) != customers {
		t.Fatalf("customers on the desk: %d, want %d", len(next), customers)
	}
}
