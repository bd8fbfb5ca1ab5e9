package zendesk_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	wire "github.com/omnibus-dev/omnibus/pkg/wire/zendesk"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	"github.com/omnibus-dev/omnibus/services/sandbox/zendesk"
)

func TestTickets(t *testing.T) {
	t.Parallel()
	hooks, bodies := make(chan *http.Request, 10), make(chan []byte, 10)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hooks <- r
		bodies <- b
	}))
	defer recv.Close()
	mux := http.NewServeMux()
	env := sim.NewEnv(mux, recv.URL+"/hooks", nil, 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s, err := zendesk.New(env, zendesk.Config{Email: "bot@example.com", APIToken: "tok", WebhookSecret: "zsecret"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	do := func(method, path, auth string, body any) (int, http.Header, []byte) {
		var rd io.Reader
		if body != nil {
			raw, _ := json.Marshal(body)
			rd = bytes.NewReader(raw)
		}
		req, _ := http.NewRequest(method, srv.URL+"/sandbox/zendesk"+path, rd)
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, out
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
	r, raw := <-hooks, <-bodies
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
