package zendesk_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	wire "github.com/omnibus-dev/omnibus/pkg/wire/zendesk"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim/simtest"
	"github.com/omnibus-dev/omnibus/services/sandbox/zendesk"
)

func TestTickets(t *testing.T) {
	t.Parallel()
	hooks := simtest.NewRecorder()
	sb := simtest.New(t, hooks)
	s, err := zendesk.New(sb.Env, zendesk.Config{Email: "bot@example.com", APIToken: "tok", WebhookSecret: "zsecret"})
	if err != nil {
		t.Fatal(err)
	}
	env := sb.Env
	do := func(method, path, auth string, body any) (int, http.Header, []byte) {
		return simtest.Do(t, method, sb.Srv.URL+"/sandbox/zendesk"+path, auth, body)
	}
	auth := wire.BasicAuth("bot@example.com", "tok")
	if st, _, body := do("POST", wire.PathTickets, wire.BasicAuth("bot@example.com", "no"), nil); st != 401 || !errors.Is(wire.DecodeError(st, body, ""), wire.ErrUnauthorized) || !bytes.Contains(body, []byte(wire.MsgUnauthorized)) {
		t.Fatalf("401: %d %s", st, body)
	}
	create := wire.CreateRequest{Ticket: wire.NewTicket{Subject: "Damaged parcel", Comment: wire.Comment{Body: "Order 123"}, ExternalID: "omnibus:conversation:1", Tags: []string{"omnibus"}}}
	st, h, body := do("POST", wire.PathTickets, auth, create)
	tr, err := wire.ParseTicket(body)
	if st != 201 || err != nil || h.Get("Location") == "" || *tr.Ticket.ExternalID != "omnibus:conversation:1" {
		t.Fatalf("%d %s %v", st, body, err)
	}
	// external_id is not unique on Zendesk.
	do("POST", "/api/v2/tickets", auth, create)
	_, _, body = do("GET", wire.PathTickets+"?external_id=omnibus:conversation:1", auth, nil)
	if l, err := wire.ParseList(body); err != nil || l.Count != 2 {
		t.Fatalf("list %s", body)
	}
	if st, _, body := do("POST", wire.PathTickets, auth, wire.CreateRequest{}); st != 422 || !errors.Is(wire.DecodeError(st, body, ""), wire.ErrInvalid) {
		t.Fatalf("422: %d %s", st, body)
	}
	pub := true
	st, _, body = do("PUT", wire.TicketPath(tr.Ticket.ID), auth, wire.UpdateRequest{Ticket: wire.TicketUpdate{Comment: &wire.Comment{Body: "called back", Public: &pub}}})
	if st != 200 || len(s.Tickets()[0].Comments) != 2 {
		t.Fatalf("update %d %s", st, body)
	}
	if st, _, _ := do("GET", "/api/v2/tickets/999.json", auth, nil); st != 404 {
		t.Fatalf("404: %d", st)
	}
	if err := s.SetStatus(context.Background(), tr.Ticket.ID, "solved"); err != nil {
		t.Fatal(err)
	}
	r, raw := <-hooks.Requests, <-hooks.Bodies
	if r.URL.Path != "/hooks/ticket/zendesk" || !wire.VerifyWebhook("zsecret", r.Header.Get(wire.HeaderTimestamp), raw, r.Header.Get(wire.HeaderSignature)) {
		t.Fatalf("webhook %s %v", r.URL.Path, r.Header)
	}
	ev, err := wire.ParseWebhook(raw)
	if err != nil || ev.Event.Current != "SOLVED" || ev.Event.Previous != "NEW" || *ev.Detail.ExternalID != "omnibus:conversation:1" {
		t.Fatalf("%s", raw)
	}
	_ = env.SetFault("zendesk "+zendesk.OpCreate, sim.Fault{ErrorRatio: 1, Code: "429"})
	st, h, body = do("POST", wire.PathTickets, auth, create)
	if e := wire.DecodeError(st, body, h.Get("Retry-After")); st != 429 || e.RetryAfter.Seconds() != 1 {
		t.Fatalf("429: %d %v %s", st, h, body)
	}
}

// TestIdempotencyKey: Zendesk's Idempotency-Key on create — miss then hit (same ticket, original
// answer replayed), mismatch 400 IdempotentRequestError, forgotten after the TTL, concurrent
// requests with one key make one ticket, and a refused create leaves the key free.
func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	var clock atomic.Int64 // seconds added to the real clock
	now := func() time.Time { return time.Now().Add(time.Duration(clock.Load()) * time.Second) }
	mux := http.NewServeMux()
	env := sim.NewEnv(mux, "", nil, 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s, err := zendesk.New(env, zendesk.Config{Email: "bot@example.com", APIToken: "tok", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	post := func(key, body string) (int, http.Header, []byte) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/sandbox/zendesk"+wire.PathTickets, strings.NewReader(body))
		req.Header.Set("Authorization", wire.BasicAuth("bot@example.com", "tok"))
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set(wire.HeaderIdempotencyKey, key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, b
	}
	const body = `{"ticket":{"subject":"Refund","comment":{"body":"Customer wants a refund"},"external_id":"omnibus:conversation:1"}}`
	st, h, first := post("conv-1", body)
	if st != 201 || h.Get(wire.HeaderIdempotencyLookup) != wire.LookupMiss {
		t.Fatalf("first: %d %v %s", st, h, first)
	}
	// The same parameters, spelled differently: the original answer, nothing created.
	st, h, again := post("conv-1", `{"ticket": {"external_id":"omnibus:conversation:1", "comment":{"body":"Customer wants a refund"}, "subject":"Refund"}}`)
	if st != 201 || h.Get(wire.HeaderIdempotencyLookup) != wire.LookupHit || !bytes.Equal(again, first) || h.Get("Location") == "" || len(s.Tickets()) != 1 {
		t.Fatalf("replay: %d %v %s, %d tickets", st, h, again, len(s.Tickets()))
	}
	// Other parameters with the key: Zendesk's 400.
	st, _, b := post("conv-1", `{"ticket":{"subject":"Other","comment":{"body":"x"}}}`)
	if e := wire.DecodeError(st, b, ""); st != 400 || !e.IdempotencyConflict() || e.Body.Description != wire.DescIdempotencyMismatch || len(s.Tickets()) != 1 {
		t.Fatalf("mismatch: %d %s", st, b)
	}
	if st, _, b := post(strings.Repeat("k", 256), body); st != 400 || !wire.DecodeError(st, b, "").IdempotencyConflict() {
		t.Fatalf("long key: %d %s", st, b)
	}
	// A refused create does not store its key.
	if st, _, _ := post("conv-2", `{"ticket":{"subject":"no body","comment":{"body":""}}}`); st != 422 {
		t.Fatal(st)
	}
	if st, h, _ := post("conv-2", body); st != 201 || h.Get(wire.HeaderIdempotencyLookup) != wire.LookupMiss || len(s.Tickets()) != 2 {
		t.Fatalf("key after a 422: %d %v", st, h)
	}
	// Two hours later the key is forgotten: a new ticket.
	clock.Add(int64(wire.IdempotencyKeyTTL / time.Second))
	if st, h, _ := post("conv-1", body); st != 201 || h.Get(wire.HeaderIdempotencyLookup) != wire.LookupMiss || len(s.Tickets()) != 3 {
		t.Fatalf("after the TTL: %d %v, %d tickets", st, h, len(s.Tickets()))
	}
	// Concurrent creates with one key: one ticket, every answer names it.
	ids := make(chan int64, 20)
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, _, b := post("conv-3", body)
			tr, err := wire.ParseTicket(b)
			if st != 201 || err != nil {
				t.Errorf("concurrent: %d %s", st, b)
			}
			ids <- tr.Ticket.ID
		}()
	}
	wg.Wait()
	close(ids)
	seen := map[int64]bool{}
	for id := range ids {
		seen[id] = true
	}
	if len(seen) != 1 || len(s.Tickets()) != 4 {
		t.Fatalf("concurrent creates answered tickets %v, %d tickets stored", seen, len(s.Tickets()))
	}
	if l := s.IdempotencyLookups(); l.Hits != 1+19 || l.Misses != 4 || l.Mismatches != 1 {
		t.Fatalf("%+v", l)
	}
}

// TestProcessedFaults: "processed" faults create the ticket and lose the answer (500 or a dropped
// connection); a retry with the same key gets the ticket (hit), not a second one. A plain
// injected 500 creates nothing.
func TestProcessedFaults(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	env := sim.NewEnv(mux, "", nil, 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s, err := zendesk.New(env, zendesk.Config{Email: "bot@example.com", APIToken: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	// post answers the status and x-idempotency-lookup header of a create.
	post := func(key string) (int, string, error) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/sandbox/zendesk/api/v2/tickets", strings.NewReader(`{"ticket":{"subject":"s","comment":{"body":"b"}}}`))
		req.Header.Set("Authorization", wire.BasicAuth("bot@example.com", "tok"))
		req.Header.Set(wire.HeaderIdempotencyKey, key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Header.Get(wire.HeaderIdempotencyLookup), nil
	}
	key := "zendesk " + zendesk.OpCreate
	for i, tc := range []struct {
		code    string
		status  int // 0: the connection is dropped
		tickets int // stored after the faulty call
	}{{"", 500, 0}, {"processed", 500, 2}, {"processed_503", 503, 3}, {"processed_drop", 0, 4}} {
		if err := env.SetFault(key, sim.Fault{ErrorRatio: 1, Code: tc.code}); err != nil {
			t.Fatal(err)
		}
		k := fmt.Sprint("k", i)
		st, _, err := post(k)
		switch {
		case tc.status == 0 && err == nil:
			t.Fatalf("%q: answered %d, want a dropped connection", tc.code, st)
		case tc.status != 0 && (err != nil || st != tc.status):
			t.Fatalf("%q: %d %v", tc.code, st, err)
		case len(s.Tickets()) != tc.tickets:
			t.Fatalf("%q: %d tickets, want %d", tc.code, len(s.Tickets()), tc.tickets)
		}
		_ = env.SetFault(key, sim.Fault{})
		st, lookup, err := post(k) // the client's retry
		want := wire.LookupHit
		if tc.code == "" {
			want = wire.LookupMiss
		}
		if err != nil || st != 201 || lookup != want || len(s.Tickets()) != max(tc.tickets, 1) {
			t.Fatalf("%q retry: %d %q %v, %d tickets", tc.code, st, lookup, err, len(s.Tickets()))
		}
	}
}
