// Package demo is the all-in-one's demo service until the vendor sandbox and the desk exist: a
// simulated example vendor (it accepts signed sends and lists them), simulated customers who
// write through the vendor's signed webhook, an auto-reply that answers every inbound message on
// its channel, and a tap that logs every event crossing the bus.
package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/pii"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/services/example"
)

// Options configures the demo.
type Options struct {
	Base     string        // the all-in-one's HTTP base URL
	Secret   string        // the example vendor's shared secret
	Interval time.Duration // between simulated customer messages
}

var texts = []string{"你好，我的快递到哪了？", "Where is my order?", "我想退货", "可以开发票吗？", "Thanks!", "订单号 SF1234567890"}

// Service returns the demo as a service.
func Service(o Options) service.Service {
	return service.Service{
		Name:       "demo",
		Publishes:  []service.Route{{Subject: example.SubjectOut, Type: example.TypeSend}},
		Subscribes: []service.Route{{Subject: example.SubjectIn, Type: example.TypeReceived}},
		Run:        func(ctx context.Context, d service.Deps) error { return run(ctx, d, o) },
	}
}

type sent struct {
	To   string    `json:"to"`
	Text string    `json:"text"`
	Ref  string    `json:"ref"`
	At   time.Time `json:"at"`
}

func run(ctx context.Context, d service.Deps, o Options) error {
	var mu sync.Mutex
	var outbox []sent
	ids := map[string]string{} // ref → message_id: the vendor keeps one message per ref, so a retried send is not sent twice
	d.Mux.HandleFunc("POST /sandbox/example/send", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if r.Header.Get("X-Example-Signature") != example.Sign(o.Secret, r.Header.Get("X-Example-Timestamp"), body) {
			http.Error(w, `{"error":"bad signature"}`, http.StatusUnauthorized)
			return
		}
		var s sent
		if err := json.Unmarshal(body, &s); err != nil {
			http.Error(w, `{"error":"bad json"}`, http.StatusBadRequest)
			return
		}
		s.At = time.Now().UTC()
		mu.Lock()
		id, repeated := ids[s.Ref]
		repeated = repeated && s.Ref != ""
		if !repeated {
			outbox = append(outbox, s)
			id = "ex-" + strconv.Itoa(len(outbox))
			ids[s.Ref] = id
		}
		mu.Unlock()
		if !repeated {
			d.Log.Info("vendor delivered to customer", "to", pii.MaskPhone(s.To), "text", pii.Redact(s.Text))
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"message_id": id})
	})
	d.Mux.HandleFunc("GET /sandbox/example/sent", func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(outbox)
	})

	// Auto-reply on the customer's channel.
	sub, err := d.Bus.Subscribe(ctx, bus.ConsumerConfig{Service: "demo", Stream: bus.StreamIn, FilterSubjects: []string{example.SubjectIn}},
		func(ctx context.Context, in bus.Delivery) error {
			var msg struct {
				From    map[string]string     `json:"from"`
				Message struct{ Text string } `json:"message"`
			}
			if err := event.DecodeData(in.Event, &msg); err != nil {
				return bus.Permanent(err)
			}
			reply, err := event.New(example.TypeSend, "/demo/autoreply", map[string]any{
				"channel": "example", "to": msg.From,
				"message": map[string]any{"type": "text", "text": "收到 / received: " + msg.Message.Text},
			}, event.WithID("demo:reply:"+in.Event.ID()), event.WithCorrelationID(in.Event.ID()), event.WithPartitionKey(event.PartitionKey(in.Event)))
			if err != nil {
				return bus.Permanent(err)
			}
			return d.Bus.Publish(ctx, example.SubjectOut, reply)
		})
	if err != nil {
		return err
	}

	d.MarkStarted()

	// Simulated customers.
	client := &http.Client{Timeout: 5 * time.Second}
	tick := time.NewTicker(o.Interval)
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			return sub.Shutdown(sctx)
		case <-tick.C:
		}
		if err := customerWrites(ctx, client, o, n); err != nil && ctx.Err() == nil {
			d.Log.Warn("simulated customer could not write", "err", err)
		}
	}
}

func customerWrites(ctx context.Context, client *http.Client, o Options, n int) error {
	body, _ := json.Marshal(map[string]any{
		"id":      fmt.Sprintf("sim-%d-%d", time.Now().Unix(), n),
		"from":    fmt.Sprintf("+86138%08d", rand.IntN(20)),
		"text":    texts[rand.IntN(len(texts))],
		"sent_at": time.Now().UTC(),
	})
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.Base+"/hooks/example/messages", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("X-Example-Timestamp", ts)
	req.Header.Set("X-Example-Signature", example.Sign(o.Secret, ts, body))
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("webhook answered %d: %s", resp.StatusCode, b)
	}
	return nil
}
