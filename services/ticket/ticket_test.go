package ticket_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/connector/connectortest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/pii"
	"github.com/omnibus-dev/omnibus/pkg/schema"
	"github.com/omnibus-dev/omnibus/pkg/service/servicetest"
	wirejira "github.com/omnibus-dev/omnibus/pkg/wire/jira"
	sbjira "github.com/omnibus-dev/omnibus/services/sandbox/jira"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	sbzendesk "github.com/omnibus-dev/omnibus/services/sandbox/zendesk"
	"github.com/omnibus-dev/omnibus/services/ticket"
)

const (
	convA = "c1d2e3f4-a5b6-5c7d-8e9f-0a1b2c3d4e5f"
	convB = "0b1c2d3e-4f56-4a7c-8e9d-8a2e4c6d1f3b"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type testBundle struct {
	bus  *bustest.Bundle
	env  *sim.Env
	jira *sbjira.Sim
	zd   *sbzendesk.Sim
	app  *httptest.Server // the connector's webhooks
	drop atomic.Int32     // drop the answers of the next n Zendesk creates (after the sandbox made the ticket)
	cfg  map[string]string
}

// run starts a connector (a replica: they share the bus's durable consumers) with its webhooks on
// mux, stopped when the test ends.
func (tb *testBundle) run(t *testing.T, mux *http.ServeMux) {
	t.Helper()
	servicetest.Run(t, ticket.Service(), tb.bus.Client, mux, tb.cfg)
}

// setup runs the sandbox (Jira + Zendesk) and the connector for provider on one server, as the
// all-in-one does: the sandbox posts webhooks to the connector's /hooks.
func setup(t *testing.T, provider string, extra map[string]string) *testBundle {
	t.Helper()
	tb := &testBundle{bus: bustest.New(t, bus.WithLogger(quiet()))}
	mux := http.NewServeMux()
	tb.app = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/sandbox/zendesk/api/v2/tickets.json") && tb.drop.Load() > 0 {
			tb.drop.Add(-1)
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, r) // the ticket is created...
			hj, _ := w.(http.Hijacker)
			conn, _, _ := hj.Hijack()
			conn.Close() // ...but the answer never arrives
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(tb.app.Close)
	var cfg map[string]string
	tb.env, tb.jira, tb.zd, cfg = sandbox(t, mux, tb.app.URL, provider)
	for k, v := range extra {
		cfg[k] = v
	}
	tb.cfg = cfg
	tb.run(t, mux)
	bustest.WaitFor(t, 5*time.Second, "webhooks mounted", func() bool {
		resp, err := http.Post(tb.app.URL+"/hooks/ticket/jira", "application/json", strings.NewReader("{}"))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusUnauthorized
	})
	return tb
}

// sandbox runs the sandbox's Jira and Zendesk on mux, served at base, and returns the
// environment of a connector for provider pointing at them.
func sandbox(t *testing.T, mux *http.ServeMux, base, provider string) (*sim.Env, *sbjira.Sim, *sbzendesk.Sim, map[string]string) {
	t.Helper()
	env := sim.NewEnv(mux, base+"/hooks", nil, 0, quiet())
	jira, err := sbjira.New(env, sbjira.Config{Email: "bot@example.com", APIToken: "jira-token", WebhookSecret: "jira-hook"})
	if err != nil {
		t.Fatal(err)
	}
	zd, err := sbzendesk.New(env, sbzendesk.Config{Email: "bot@example.com", APIToken: "zd-token", WebhookSecret: "zd-hook"})
	if err != nil {
		t.Fatal(err)
	}
	return env, jira, zd, map[string]string{"TICKET_PROVIDER": provider,
		"JIRA_BASE_URL": base + "/sandbox/jira", "JIRA_EMAIL": "bot@example.com", "JIRA_API_TOKEN": "jira-token", "JIRA_WEBHOOK_SECRET": "jira-hook",
		"ZENDESK_API_BASE": base + "/sandbox/zendesk", "ZENDESK_EMAIL": "bot@example.com", "ZENDESK_API_TOKEN": "zd-token", "ZENDESK_WEBHOOK_SECRET": "zd-hook",
		"TICKET_RECONCILE_DELAY": "50ms"}
}

// TestConformance runs the tool connectors' conformance suite against the sandbox, for each
// provider.
func TestConformance(t *testing.T) {
	t.Parallel()
	for _, provider := range []string{"jira", "zendesk"} {
		t.Run(provider, func(t *testing.T) {
			t.Parallel()
			connectortest.RunTool(t, connectortest.ToolHarness{
				Spec: ticket.Spec, Service: ticket.Service(),
				Setup: func(t *testing.T) map[string]string {
					mux := http.NewServeMux()
					srv := httptest.NewServer(mux)
					t.Cleanup(srv.Close)
					_, _, _, cfg := sandbox(t, mux, srv.URL, provider)
					return cfg
				},
				Request: func(t *testing.T, n int) (string, event.Event) {
					e, err := event.New(ticket.TypeCreateRequested, "/desk", map[string]any{"conversation_id": uuid.NewString(),
						"customer_id": convB, "subject": fmt.Sprintf("包裹破损 %d", n)})
					if err != nil {
						t.Fatal(err)
					}
					return ticket.TypeCreateRequested, e
				},
			})
		})
	}
}

func (tb *testBundle) publish(t *testing.T, typ string, data map[string]any) event.Event {
	t.Helper()
	e, err := event.New(typ, "/desk", data)
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.bus.Client.Publish(context.Background(), typ, e); err != nil {
		t.Fatal(err)
	}
	return e
}

// answer waits for the result of request id (subject filter e.g. omni.tool.ticket.create.*).
func (tb *testBundle) answer(t *testing.T, filter, id string) event.Event {
	t.Helper()
	var got event.Event
	bustest.WaitFor(t, 20*time.Second, "answer to "+id, func() bool {
		for _, e := range tb.bus.Events(t, bus.StreamTool, filter) {
			if event.CorrelationID(e) == id && !strings.HasSuffix(e.Type(), ".requested") {
				got = e
				return true
			}
		}
		return false
	})
	if err := schema.Default().Validate(got.Type(), got.Data()); err != nil {
		t.Fatalf("%s not schema-valid: %v", got.Type(), err)
	}
	noPhones(t, "event", got.Data())
	return got
}

func noPhones(t *testing.T, what string, b []byte) {
	t.Helper()
	for _, f := range pii.Scan(string(b)) {
		if f.Kind == pii.KindPhone {
			t.Fatalf("unmasked phone %q in %s: %s", f.Value, what, b)
		}
	}
}

type result struct {
	TicketID  string `json:"ticket_id"`
	Reused    bool   `json:"reused"`
	ErrorCode string `json:"error_code"`
	URL       string `json:"url"`
}

func decode(t *testing.T, e event.Event) result {
	var r result
	if err := json.Unmarshal(e.Data(), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestJiraCreateIdempotentCommentAndStatus(t *testing.T) {
	t.Parallel()
	tb := setup(t, "jira", nil)
	req := map[string]any{"conversation_id": convA, "subject": "包裹破损", "description": "客户电话 13812345678，包裹破损。\n\n订单 123", "priority": "high"}
	first := tb.publish(t, ticket.TypeCreateRequested, req)
	a := tb.answer(t, "omni.tool.ticket.create.*", first.ID())
	if a.Type() != ticket.TypeCreateCompleted || a.ID() != "ticket:create:"+first.ID() || decode(t, a).Reused {
		t.Fatalf("%s %s", a.Type(), a.Data())
	}
	// The agent presses the button again: the same ticket, reused.
	second := tb.publish(t, ticket.TypeCreateRequested, req)
	b := decode(t, tb.answer(t, "omni.tool.ticket.create.*", second.ID()))
	if !b.Reused || b.TicketID != decode(t, a).TicketID {
		t.Fatalf("second request %+v", b)
	}
	issues := tb.jira.Issues()
	if len(issues) != 1 {
		t.Fatalf("%d issues, want 1", len(issues))
	}
	if desc := issues[0].Description.PlainText(); strings.Contains(desc, "13812345678") || !strings.Contains(desc, "订单 123") {
		t.Fatalf("description sent to Jira: %q", desc)
	}
	c := tb.publish(t, ticket.TypeCommentRequested, map[string]any{"conversation_id": convA, "body": "已联系顺丰重新派送"})
	if got := tb.answer(t, "omni.tool.ticket.comment.*", c.ID()); got.Type() != ticket.TypeCommentCompleted {
		t.Fatalf("%s %s", got.Type(), got.Data())
	}
	if n := len(tb.jira.Issues()[0].Comments); n != 1 {
		t.Fatalf("%d comments", n)
	}
	// Status sync: the issue moves in Jira, its signed webhook becomes status.changed.
	if err := tb.jira.Transition(context.Background(), issues[0].Key, "In Progress"); err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	bustest.WaitFor(t, 10*time.Second, "status.changed", func() bool {
		evs := tb.bus.Events(t, bus.StreamTool, ticket.TypeStatusChanged)
		if len(evs) == 0 {
			return false
		}
		_ = json.Unmarshal(evs[0].Data(), &st)
		return true
	})
	if st["conversation_id"] != convA || st["state"] != "open" || st["status"] != "In Progress" || st["previous_status"] != "To Do" {
		t.Fatalf("status.changed %v", st)
	}
	// Every vendor call has one audit record, without unmasked phones.
	var calls int64
	for k, s := range tb.env.Stats() {
		if strings.HasPrefix(k, "jira ") && k != "jira issue/transition" {
			calls += s.Calls
		}
	}
	var audits []event.Event
	bustest.WaitFor(t, 10*time.Second, "audit records", func() bool {
		audits = tb.bus.Events(t, bus.StreamAudit, ticket.SubjectAudit)
		return int64(len(audits)) >= calls
	})
	if int64(len(audits)) != calls {
		t.Fatalf("%d audit records for %d calls", len(audits), calls)
	}
	for _, a := range audits {
		noPhones(t, "audit", a.Data())
	}
}

// TestVendorCallsAuditedAndCounted: each vendor call makes exactly one audit record on
// omni.audit.ticket and one count in omnibus_vendor_calls_total under its route (jira.search,
// jira.create). A Jira create is never retried by the pipeline (every record has 1 attempt): the
// one the vendor refused (400) is sent once; the one that failed (503, outcome unknown) is
// reconciled by a search each time, and sent again only after the search found nothing, up to the
// route's 5 attempts. With one delivery per request (TICKET_MAX_DELIVER=1), the request is then
// answered outcome_unknown. Not parallel: it reads the process's metrics.
func TestVendorCallsAuditedAndCounted(t *testing.T) {
	// The process's counters, before (earlier runs with -count add to them).
	before := map[string]map[string]float64{"search": vendorCalls(t, "jira", "search"), "create": vendorCalls(t, "jira", "create")}
	tb := setup(t, "jira", map[string]string{"TICKET_MAX_DELIVER": "1"})
	const convC = "5a0e7c1d-2b3f-4c5d-8e6f-7a8b9c0d1e2f"
	ok := tb.publish(t, ticket.TypeCreateRequested, map[string]any{"conversation_id": convA, "customer_id": convB, "subject": "包裹破损"})
	if got := tb.answer(t, "omni.tool.ticket.create.*", ok.ID()); got.Type() != ticket.TypeCreateCompleted {
		t.Fatalf("%s %s", got.Type(), got.Data())
	}
	createKey := sbjira.Vendor + " " + sbjira.OpCreate
	for conv, fault := range map[string]string{convB: "http_400", convC: "http_503"} {
		if err := tb.env.SetFault(createKey, sim.Fault{ErrorRatio: 1, Code: fault}); err != nil {
			t.Fatal(err)
		}
		req := tb.publish(t, ticket.TypeCreateRequested, map[string]any{"conversation_id": conv, "subject": "Refund"})
		got := tb.answer(t, "omni.tool.ticket.create.*", req.ID())
		want := map[string]string{"http_400": "http_400", "http_503": "outcome_unknown"}[fault]
		if got.Type() != ticket.TypeCreateFailed || decode(t, got).ErrorCode != want {
			t.Fatalf("create with %s: %s %s", fault, got.Type(), got.Data())
		}
	}
	stats := tb.env.Stats()
	if c, s := stats[createKey].Calls, stats[sbjira.Vendor+" "+sbjira.OpSearch].Calls; c != 1+1+5 || s != 1+1+1+5 {
		t.Fatalf("%d creates and %d searches sent, want 7 (the 503 one 5 times) and 8 (5 reconciling the 503s)", c, s)
	}
	if n := len(tb.jira.Issues()); n != 1 {
		t.Fatalf("%d issues, want 1", n)
	}
	// The start check's two calls (myself, the project) are on their own route.
	want := map[string]int{"jira.check ok": 2, "jira.search ok": 8, "jira.create ok": 1, "jira.create permanent": 1, "jira.create error": 5}
	bustest.WaitFor(t, 10*time.Second, "17 audit records", func() bool {
		return tb.bus.StoredCount(t, bus.StreamAudit, ticket.SubjectAudit) >= 17
	})
	time.Sleep(100 * time.Millisecond) // a duplicate record would land now
	got := map[string]int{}
	for _, e := range tb.bus.Events(t, bus.StreamAudit, ticket.SubjectAudit) {
		var r struct {
			Vendor, Op, Outcome string
			Attempts            int
		}
		if err := json.Unmarshal(e.Data(), &r); err != nil || e.Type() != ticket.TypeAudit {
			t.Fatalf("audit record %s %s: %v", e.Type(), e.Data(), err)
		}
		if r.Attempts != 1 {
			t.Fatalf("%d attempts in %s", r.Attempts, e.Data())
		}
		got[r.Vendor+"."+r.Op+" "+r.Outcome]++
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("audit records %v, want one per call: %v", got, want)
	}
	for op, outcomes := range map[string]map[string]int{"search": {"ok": 8}, "create": {"ok": 1, "permanent": 1, "error": 5}} {
		m := vendorCalls(t, "jira", op)
		for o := range m {
			if m[o] -= before[op][o]; m[o] == 0 {
				delete(m, o)
			}
		}
		for o, n := range outcomes {
			if m[o] != float64(n) {
				t.Fatalf("omnibus_vendor_calls_total{vendor=jira,op=%s} grew by %v, want %v", op, m, outcomes)
			}
		}
		if len(m) != len(outcomes) {
			t.Fatalf("omnibus_vendor_calls_total{vendor=jira,op=%s} grew by %v, want %v", op, m, outcomes)
		}
	}
}

// TestZendeskLostAnswerRetriedWithKey: Zendesk creates the ticket but the connection drops before
// the answer; the pipeline retries the create with the same Idempotency-Key and Zendesk replays
// the ticket (x-idempotency-lookup: hit): one ticket.
func TestZendeskLostAnswerRetriedWithKey(t *testing.T) {
	t.Parallel()
	tb := setup(t, "zendesk", nil)
	tb.drop.Store(1)
	req := tb.publish(t, ticket.TypeCreateRequested, map[string]any{"conversation_id": convB, "subject": "Refund", "description": "Customer wants a refund"})
	got := tb.answer(t, "omni.tool.ticket.create.*", req.ID())
	if got.Type() != ticket.TypeCreateCompleted {
		t.Fatalf("%s %s", got.Type(), got.Data())
	}
	// The redelivery of the same request (e.g. after a crash before the ack) finds the ticket too.
	again := tb.publish(t, ticket.TypeCreateRequested, map[string]any{"conversation_id": convB, "subject": "Refund"})
	if r := decode(t, tb.answer(t, "omni.tool.ticket.create.*", again.ID())); !r.Reused {
		t.Fatalf("%+v", r)
	}
	if n := len(tb.zd.Tickets()); n != 1 {
		t.Fatalf("%d tickets in Zendesk, want exactly 1", n)
	}
	if n, l := tb.env.Stats()["zendesk tickets/create"].Calls, tb.zd.IdempotencyLookups(); n != 2 || l.Misses != 1 || l.Hits != 1 {
		t.Fatalf("create sent %d times (%+v), want twice: the lost one and its retry, answered from the key", n, l)
	}
	if r := decode(t, got); r.Reused || r.TicketID != strconv.FormatInt(tb.zd.Tickets()[0].ID, 10) {
		t.Fatalf("%+v: want the created ticket, not reused", r)
	}
	// Status webhook from Zendesk.
	if err := tb.zd.SetStatus(context.Background(), tb.zd.Tickets()[0].ID, "hold"); err != nil {
		t.Fatal(err)
	}
	bustest.WaitFor(t, 10*time.Second, "status.changed", func() bool {
		evs := tb.bus.Events(t, bus.StreamTool, ticket.TypeStatusChanged)
		return len(evs) == 1 && strings.Contains(string(evs[0].Data()), `"state":"on_hold"`) && evs[0].Subject() == convB
	})
}

func TestZendesk429RetryAfterHonoured(t *testing.T) {
	t.Parallel()
	tb := setup(t, "zendesk", nil)
	if err := tb.env.SetFault("zendesk tickets/create", sim.Fault{ErrorRatio: 1, Code: "429:1"}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	req := tb.publish(t, ticket.TypeCreateRequested, map[string]any{"conversation_id": convA, "subject": "Late parcel"})
	bustest.WaitFor(t, 10*time.Second, "the 429", func() bool { return tb.env.Stats()["zendesk tickets/create"].Injected == 1 })
	_ = tb.env.SetFault("zendesk tickets/create", sim.Fault{})
	got := tb.answer(t, "omni.tool.ticket.create.*", req.ID())
	if got.Type() != ticket.TypeCreateCompleted || len(tb.zd.Tickets()) != 1 {
		t.Fatalf("%s %s, %d tickets", got.Type(), got.Data(), len(tb.zd.Tickets()))
	}
	t.Logf("answered %s after a 429 with Retry-After: 1", time.Since(start).Round(time.Millisecond))
}

func TestCommentWithoutTicketFails(t *testing.T) {
	t.Parallel()
	tb := setup(t, "jira", nil)
	c := tb.publish(t, ticket.TypeCommentRequested, map[string]any{"conversation_id": convB, "body": "note"})
	got := tb.answer(t, "omni.tool.ticket.comment.*", c.ID())
	if got.Type() != ticket.TypeCommentFailed || decode(t, got).ErrorCode != "no_ticket" {
		t.Fatalf("%s %s", got.Type(), got.Data())
	}
}

func TestWebhookRejections(t *testing.T) {
	t.Parallel()
	tb := setup(t, "jira", nil)
	body := []byte(`{"timestamp":1725321547000,"webhookEvent":"jira:issue_updated","issue":{"id":"1","key":"CS-1","fields":{}},"changelog":{"id":"2","items":[{"field":"status","fromString":"To Do","toString":"Done"}]}}`)
	for _, tc := range []struct {
		name, path string
		hdr        map[string]string
		body       []byte
		want       int
	}{
		{"jira forged", "/hooks/ticket/jira", map[string]string{wirejira.HeaderSignature: wirejira.WebhookSignature("wrong", body)}, body, 401},
		{"jira unsigned", "/hooks/ticket/jira", nil, body, 401},
		{"jira malformed", "/hooks/ticket/jira", map[string]string{wirejira.HeaderSignature: wirejira.WebhookSignature("jira-hook", []byte("{}"))}, []byte("{}"), 400},
		{"zendesk expired", "/hooks/ticket/zendesk", map[string]string{"X-Zendesk-Webhook-Signature": "x", "X-Zendesk-Webhook-Signature-Timestamp": "2020-01-01T00:00:00Z"}, []byte("{}"), 401},
	} {
		req, _ := http.NewRequest(http.MethodPost, tb.app.URL+tc.path, bytes.NewReader(tc.body))
		for k, v := range tc.hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want || !strings.Contains(string(msg), "reason") {
			t.Fatalf("%s: %d %s, want %d with a reason", tc.name, resp.StatusCode, msg, tc.want)
		}
	}
	if n := tb.bus.StoredCount(t, bus.StreamTool, ticket.TypeStatusChanged); n != 0 {
		t.Fatalf("rejected webhooks published %d events", n)
	}
	// A correctly signed one is accepted; its redelivery (same identifier) is stored once.
	for range 2 {
		req, _ := http.NewRequest(http.MethodPost, tb.app.URL+"/hooks/ticket/jira", bytes.NewReader(body))
		req.Header.Set(wirejira.HeaderSignature, wirejira.WebhookSignature("jira-hook", body))
		req.Header.Set(wirejira.HeaderIdentifier, "42")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("signed webhook answered %d", resp.StatusCode)
		}
	}
	if n := tb.bus.StoredCount(t, bus.StreamTool, ticket.TypeStatusChanged); n != 1 {
		t.Fatalf("%d status events, want 1", n)
	}
}
