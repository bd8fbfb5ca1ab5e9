// Package connectortest is the conformance suite every connector must pass, in the style of
// watermill's pubsub tests: Run(t, Harness{...}) starts the connector against a real embedded
// JetStream and checks what every connector owes the bus — a forged signature is rejected with
// nothing published, a duplicate vendor message is stored once, the vendor is acked only after
// JetStream acked, every produced event is schema-valid and declared in the spec, outbound
// commands are delivered, and the connector shuts down cleanly. Tool connectors, which answer
// requests on the bus instead of taking webhooks, run RunTool: every request answered with
// declared, schema-valid events correlated to it, a redelivered request answered no second time,
// a clean shutdown. Connectors add only their vendor-specific cases. Production code must not
// import this package.
package connectortest

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/schema"
	"github.com/omnibus-dev/omnibus/pkg/service"
)

// Harness describes the connector under test.
type Harness struct {
	// Spec and Service are the connector's declaration and its service (connector.Define).
	Spec    connector.Spec
	Service service.Service
	// Env configures the connector (the variables its Config reads). The harness may change it
	// per run with Setup.
	Env map[string]string
	// Setup, optional, runs before the connector starts, e.g. to start a fake vendor with
	// httptest and point Env at it. It may return extra env entries.
	Setup func(t *testing.T) map[string]string
	// Inbound returns a valid, correctly signed inbound webhook request carrying vendor message
	// n (distinct n → distinct vendor message ids). The URL path is what matters; the host is
	// replaced by the test server's.
	Inbound func(t *testing.T, n int) *http.Request
	// Forged returns the request of Inbound(n) with a signature the vendor would not produce.
	Forged func(t *testing.T, n int) *http.Request
	// EventsPerMessage is how many events one inbound vendor message produces (a call record
	// that is a call's started and ended events); default 1.
	EventsPerMessage int
	// Outbound, optional: the outbound command event and its subject, and Delivered, which
	// reports (polled) whether the vendor received it.
	Outbound  func(t *testing.T) (subject string, e event.Event)
	Delivered func(t *testing.T, e event.Event) bool
	// Conversation, optional, returns an inbound request that OutboundDelivered sends (and
	// requires a 2xx for) before the command: for a channel that sends only in answer to a
	// customer's message the connector saw (a Douyin reply names the message it answers).
	Conversation func(t *testing.T) *http.Request
}

type running struct {
	bus    *bustest.Bundle
	srv    *httptest.Server
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, h Harness) *running {
	t.Helper()
	b := bustest.New(t, bus.WithLogger(quiet()))
	env := map[string]string{}
	for k, v := range h.Env {
		env[k] = v
	}
	if h.Setup != nil {
		for k, v := range h.Setup(t) {
			env[k] = v
		}
	}
	mux := http.NewServeMux()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- h.Service.Run(ctx, service.Deps{
			Bus: b.Client, Mux: mux, Log: quiet(), Health: service.NewHealth(),
			Env: func(k string) (string, bool) {
				v, ok := env[k]
				return v, ok
			},
		})
	}()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	r := &running{bus: b, srv: srv, cancel: cancel, done: done}
	t.Cleanup(func() { _ = r.stop(t) }) // a failed stop has already failed the test
	// The connector mounts its routes during setup: wait until the webhook answers non-404.
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp := r.send(t, h.Forged(t, 0))
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("connector exited during setup: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook %s never mounted", h.Forged(t, 0).URL.Path)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return r
}

func (r *running) stop(t *testing.T) error {
	t.Helper()
	if r.cancel == nil {
		return nil
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("connector did not stop within 10s of cancellation")
		return nil
	}
}

type response struct {
	StatusCode int
	Body       string
}

func (r *running) send(t *testing.T, req *http.Request) response {
	t.Helper()
	req.URL.Scheme, req.URL.Host, req.Host = "http", strings.TrimPrefix(r.srv.URL, "http://"), ""
	req.RequestURI = ""
	resp, err := r.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("send %s: %v", req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, string(body)}
}

func ok(code int) bool { return code >= 200 && code < 300 }

// Run runs the conformance suite.
func Run(t *testing.T, h Harness) {
	per := max(h.EventsPerMessage, 1)
	t.Run("ForgedSignatureRejected", func(t *testing.T) {
		t.Parallel()
		r := start(t, h)
		resp := r.send(t, h.Forged(t, 1))
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Fatalf("forged request answered %d %s, want 4xx", resp.StatusCode, resp.Body)
		}
		if !strings.Contains(resp.Body, "reason") {
			t.Errorf("4xx without a reason: %s", resp.Body)
		}
		if n := r.bus.StoredCount(t, bus.StreamIn, ">"); n != 0 {
			t.Fatalf("forged request published %d events", n)
		}
	})
	t.Run("DuplicateDeduplicated", func(t *testing.T) {
		t.Parallel()
		r := start(t, h)
		for range 3 {
			if resp := r.send(t, h.Inbound(t, 1)); !ok(resp.StatusCode) {
				t.Fatalf("valid request answered %d %s", resp.StatusCode, resp.Body)
			}
		}
		if n := r.bus.StoredCount(t, bus.StreamIn, ">"); n != uint64(per) {
			t.Fatalf("one vendor message sent 3 times stored %d events, want %d", n, per)
		}
	})
	t.Run("AckOnlyAfterPublish", func(t *testing.T) {
		t.Parallel()
		r := start(t, h)
		resp := r.send(t, h.Inbound(t, 1))
		if !ok(resp.StatusCode) {
			t.Fatalf("valid request answered %d %s", resp.StatusCode, resp.Body)
		}
		// The 2xx was written: the event must already be stored, with no waiting.
		if n := r.bus.StoredCount(t, bus.StreamIn, ">"); n == 0 {
			t.Fatal("vendor acknowledged before the event was stored")
		}
		// JetStream stops acking (the stream is gone): the vendor must not get a 2xx.
		if err := r.bus.Client.JetStream().DeleteStream(context.Background(), bus.StreamIn); err != nil {
			t.Fatal(err)
		}
		if resp := r.send(t, h.Inbound(t, 2)); ok(resp.StatusCode) {
			t.Fatalf("vendor acknowledged (%d) although JetStream did not store the event", resp.StatusCode)
		}
	})
	t.Run("ProducedEventsValidAndDeclared", func(t *testing.T) {
		t.Parallel()
		r := start(t, h)
		for n := 1; n <= 5; n++ {
			if resp := r.send(t, h.Inbound(t, n)); !ok(resp.StatusCode) {
				t.Fatalf("valid request %d answered %d %s", n, resp.StatusCode, resp.Body)
			}
		}
		events := r.bus.Events(t, bus.StreamIn, ">")
		if len(events) < 5*per {
			t.Fatalf("5 vendor messages produced %d events, want %d", len(events), 5*per)
		}
		for _, e := range events {
			if err := schema.Default().Validate(e.Type(), e.Data()); err != nil {
				t.Errorf("produced event %s is not schema-valid: %v", e.ID(), err)
			}
			if e.Source() != "/connectors/"+h.Spec.Name {
				t.Errorf("event source %q, want /connectors/%s", e.Source(), h.Spec.Name)
			}
			if e.DataSchema() == "" || event.PartitionKey(e) == "" {
				t.Errorf("event %s lacks dataschema or partitionkey", e.ID())
			}
			found := false
			for _, p := range h.Spec.Produces {
				found = found || p.Type == e.Type()
			}
			if !found {
				t.Errorf("event type %s not declared in Spec.Produces", e.Type())
			}
		}
	})
	if h.Outbound != nil {
		t.Run("OutboundDelivered", func(t *testing.T) {
			t.Parallel()
			r := start(t, h)
			if h.Conversation != nil {
				if resp := r.send(t, h.Conversation(t)); !ok(resp.StatusCode) {
					t.Fatalf("the customer's message answered %d %s", resp.StatusCode, resp.Body)
				}
			}
			subject, e := h.Outbound(t)
			if err := r.bus.Client.Publish(context.Background(), subject, e); err != nil {
				t.Fatal(err)
			}
			bustest.WaitFor(t, 10*time.Second, "vendor delivery", func() bool { return h.Delivered(t, e) })
		})
	}
	t.Run("CleanShutdown", func(t *testing.T) {
		t.Parallel()
		r := start(t, h)
		if resp := r.send(t, h.Inbound(t, 1)); !ok(resp.StatusCode) {
			t.Fatalf("valid request answered %d %s", resp.StatusCode, resp.Body)
		}
		if err := r.stop(t); err != nil {
			t.Fatalf("Run returned %v after cancellation, want nil", err)
		}
	})
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
