package oms_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/connector/connectortest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/pii"
	"github.com/omnibus-dev/omnibus/pkg/schema"
	"github.com/omnibus-dev/omnibus/pkg/service/servicetest"
	"github.com/omnibus-dev/omnibus/services/oms"
	omssim "github.com/omnibus-dev/omnibus/services/sandbox/oms"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

const (
	appKey    = "omnibus-demo"
	appSecret = "oms-secret-2026"
	customers = 20
	seed      = 3
)

func logOut() io.Writer {
	if testing.Verbose() {
		return os.Stderr
	}
	return io.Discard
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(logOut(), nil)) }

type testBundle struct {
	bus  *bustest.Bundle
	env  *sim.Env
	oms  *omssim.Sim
	pop  []sim.Customer
	mu   sync.Mutex
	seen map[string][]event.Event // results by correlation id, as published
	stop func()
}

func setup(t *testing.T, vars map[string]string) *testBundle {
	t.Helper()
	tb := &testBundle{bus: bustest.New(t, bus.WithLogger(quiet())), pop: sim.Population(customers, seed), seen: map[string][]event.Event{}}
	sub, err := tb.bus.Conn.Subscribe("omni.tool.oms.>", func(m *nats.Msg) {
		if e, err := event.Decode(m.Header, m.Data); err == nil && e.Type() != oms.TypeLookupRequested {
			tb.mu.Lock()
			tb.seen[event.CorrelationID(e)] = append(tb.seen[event.CorrelationID(e)], e)
			tb.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	var env map[string]string
	tb.env, tb.oms, env = sandbox(t)
	for k, v := range vars {
		env[k] = v
	}
	tb.stop = servicetest.Run(t, oms.Service(), tb.bus.Client, nil, env)
	return tb
}

// sandbox runs the sandbox's OMS on loopback and returns the connector's environment pointing
// at it.
func sandbox(t *testing.T) (*sim.Env, *omssim.Sim, map[string]string) {
	t.Helper()
	mux := http.NewServeMux()
	env := sim.NewEnv(mux, "http://127.0.0.1:1/hooks", nil, 0, quiet())
	o, err := omssim.New(env, omssim.Config{AppKey: appKey, AppSecret: appSecret, Customers: customers, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return env, o, map[string]string{"OMS_API_BASE": srv.URL + "/sandbox/oms", "OMS_APP_KEY": appKey, "OMS_APP_SECRET": appSecret}
}

// TestConformance runs the tool connectors' conformance suite against the sandbox.
func TestConformance(t *testing.T) {
	t.Parallel()
	pop := sim.Population(customers, seed)
	connectortest.RunTool(t, connectortest.ToolHarness{
		Spec: oms.Spec, Service: oms.Service(),
		Setup: func(t *testing.T) map[string]string { _, _, env := sandbox(t); return env },
		Request: func(t *testing.T, n int) (string, event.Event) {
			conv := uuid.NewString()
			req := oms.LookupRequest{CustomerID: uuid.NewString(), ConversationID: conv, Query: oms.Query{Kind: "phone", Value: pop[n%len(pop)].Phone}}
			e, err := event.New(oms.TypeLookupRequested, "/services/desk", req, event.WithSubject(conv))
			if err != nil {
				t.Fatal(err)
			}
			return oms.TypeLookupRequested, e
		},
	})
}

func (tb *testBundle) publish(t *testing.T, subject string, e event.Event) {
	t.Helper()
	if err := tb.bus.Client.Publish(context.Background(), subject, e); err != nil {
		t.Fatal(err)
	}
}

// lookup publishes a lookup request as the desk does.
func (tb *testBundle) lookup(t *testing.T, conv, kind, value string) event.Event {
	t.Helper()
	req := oms.LookupRequest{CustomerID: uuid.NewString(), ConversationID: conv, Query: oms.Query{Kind: kind, Value: value}}
	e, err := event.New(oms.TypeLookupRequested, "/services/desk", req, event.WithSubject(conv))
	if err != nil {
		t.Fatal(err)
	}
	tb.publish(t, oms.TypeLookupRequested, e)
	return e
}

// result waits for the first result correlated with id.
func (tb *testBundle) result(t *testing.T, id string, v any) event.Event {
	t.Helper()
	var got event.Event
	bustest.WaitFor(t, 20*time.Second, "result of "+id, func() bool {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		if es := tb.seen[id]; len(es) > 0 {
			got = es[0]
			return true
		}
		return false
	})
	if err := event.DecodeData(got, v); err != nil {
		t.Fatal(err)
	}
	if err := schema.Default().Validate(got.Type(), got.Data()); err != nil {
		t.Fatalf("%s not schema-valid: %v", got.Type(), err)
	}
	return got
}

func (tb *testBundle) calls(op string) int64 { return tb.env.Stats()["oms "+op].Calls }

// closed publishes a conversation's closed event as the unifier does.
func (tb *testBundle) closed(t *testing.T, conv, reason string) event.Event {
	t.Helper()
	opened := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	data := map[string]any{"conversation": map[string]any{"id": conv, "customer_id": uuid.NewString(), "status": "closed",
		"channels": []string{"wechatkf", "sms"}, "opened_at": opened, "closed_at": opened.Add(20 * time.Minute),
		"close_reason": reason, "last_event_at": opened.Add(15 * time.Minute), "assignee": "agent-0042"}, "reason": reason}
	e, err := event.New(oms.TypeConversationClose, "/services/unifier", data, event.WithSubject(conv))
	if err != nil {
		t.Fatal(err)
	}
	tb.publish(t, oms.TypeConversationClose, e)
	return e
}

func TestLookupByPhoneAndOrderNo(t *testing.T) {
	t.Parallel()
	tb := setup(t, nil)
	sfWaybill := regexp.MustCompile(`^SF[0-9]{13}$`)
	waybills := 0
	for _, c := range tb.pop {
		want := tb.oms.Orders(c.Phone)
		var a oms.LookupAnswer
		e := tb.result(t, tb.lookup(t, uuid.NewString(), "phone", c.Phone).ID(), &a)
		if e.Type() != oms.TypeLookupCompleted || a.Query.Masked == "" || a.Query.Value != "" {
			t.Fatalf("%s %+v", e.Type(), a)
		}
		if f := leaks(string(e.Data())); len(f) > 0 {
			t.Fatalf("answer leaks %v: %s", f, e.Data())
		}
		if len(want) == 0 {
			if *a.Found || len(*a.Orders) != 0 {
				t.Fatalf("customer %d has no orders: %+v", c.ID, a)
			}
			continue
		}
		if !*a.Found || *a.Total != len(want) || len(*a.Orders) != min(5, len(want)) {
			t.Fatalf("customer %d: %d orders, got %+v", c.ID, len(want), a)
		}
		for i, o := range *a.Orders {
			if o.OrderNo != want[i].OrderNo || o.PayAmount != want[i].PayAmount || len(o.Items) != len(want[i].Items) {
				t.Fatalf("order %d: %+v vs %+v", i, o, want[i])
			}
			for _, w := range o.Waybills {
				waybills++
				if w.CarrierCode == "SF" && !sfWaybill.MatchString(w.WaybillNo) {
					t.Fatalf("waybill %+v", w)
				}
			}
		}
		// By order number: that one order.
		var one oms.LookupAnswer
		tb.result(t, tb.lookup(t, "", "order_no", want[0].OrderNo).ID(), &one)
		if !*one.Found || len(*one.Orders) != 1 || (*one.Orders)[0].OrderNo != want[0].OrderNo || one.Query.Value != want[0].OrderNo {
			t.Fatalf("%+v", one)
		}
	}
	if waybills == 0 {
		t.Fatal("no waybills in any order")
	}
	var none oms.LookupAnswer
	if tb.result(t, tb.lookup(t, "", "order_no", "SO0000000000000000").ID(), &none); *none.Found || len(*none.Orders) != 0 {
		t.Fatalf("%+v", none)
	}
}

func TestLookupCache(t *testing.T) {
	t.Parallel()
	tb := setup(t, nil)
	var reqs []event.Event
	for range 10 { // concurrent misses of one phone: one call
		reqs = append(reqs, tb.lookup(t, "", "phone", tb.pop[1].Phone))
	}
	for _, r := range reqs {
		var a oms.LookupAnswer
		tb.result(t, r.ID(), &a)
	}
	var again oms.LookupAnswer
	tb.result(t, tb.lookup(t, "", "phone", tb.pop[1].Phone).ID(), &again)
	if n := tb.calls(omssim.OpList); n != 1 {
		t.Fatalf("11 lookups of one phone made %d OMS calls", n)
	}
}

func TestLookupFallback(t *testing.T) {
	t.Parallel()
	tb := setup(t, map[string]string{"OMS_CACHE_TTL": "100ms", "OMS_LOOKUP_BUDGET": "1s"})
	phone := tb.pop[1].Phone
	var first oms.LookupAnswer
	tb.result(t, tb.lookup(t, "", "phone", phone).ID(), &first)
	// The OMS fails: once the TTL passed, the stale answer is served, with its as_of.
	if err := tb.env.SetFault("oms "+omssim.OpList, sim.Fault{ErrorRatio: 1, Code: "50001"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // past the TTL
	var stale oms.LookupAnswer
	e := tb.result(t, tb.lookup(t, "", "phone", phone).ID(), &stale)
	if e.Type() != oms.TypeLookupCompleted || !stale.AsOf.Equal(*first.AsOf) || tb.calls(omssim.OpList) < 2 {
		t.Fatalf("%s %+v (first as of %s)", e.Type(), stale, first.AsOf)
	}
	// Nothing cached: failed, with the OMS's code and the manual path.
	var failed oms.LookupAnswer
	e = tb.result(t, tb.lookup(t, "", "phone", tb.pop[2].Phone).ID(), &failed)
	if e.Type() != oms.TypeLookupFailed || failed.ErrorCode != "50001" || failed.Fallback == nil || failed.Found != nil {
		t.Fatalf("%s %+v", e.Type(), failed)
	}
	// Throttled: 42901 is a rate limit (retried after Retry-After only when it fits the budget).
	if err := tb.env.SetFault("oms "+omssim.OpList, sim.Fault{ErrorRatio: 1, Code: "42901"}); err != nil {
		t.Fatal(err)
	}
	e = tb.result(t, tb.lookup(t, "", "phone", tb.pop[3].Phone).ID(), &failed)
	if e.Type() != oms.TypeLookupFailed || failed.ErrorCode != "42901" {
		t.Fatalf("%s %+v", e.Type(), failed)
	}
}

func TestArchiveOnClose(t *testing.T) {
	t.Parallel()
	tb := setup(t, nil)
	var c sim.Customer
	for _, p := range tb.pop {
		if len(tb.oms.Orders(p.Phone)) > 1 {
			c = p
			break
		}
	}
	orders := tb.oms.Orders(c.Phone)
	conv := uuid.NewString()
	var a oms.LookupAnswer
	tb.result(t, tb.lookup(t, conv, "phone", c.Phone).ID(), &a)

	// The first attempt fails (OMS busy); the bus redelivers; the close is also published twice
	// (a re-close, a replay). The OMS gets exactly one record, on the newest order.
	if err := tb.env.SetFault("oms "+omssim.OpArchive, sim.Fault{ErrorRatio: 1, Code: "50001"}); err != nil {
		t.Fatal(err)
	}
	first := tb.closed(t, conv, "客户问题已解决，来电 13800138000")
	bustest.WaitFor(t, 10*time.Second, "a failed archive attempt", func() bool { return tb.env.Stats()["oms "+omssim.OpArchive].Injected > 0 })
	if err := tb.env.SetFault("oms "+omssim.OpArchive, sim.Fault{}); err != nil {
		t.Fatal(err)
	}
	var res oms.ArchiveResult
	e := tb.result(t, first.ID(), &res)
	if e.Type() != oms.TypeArchiveCompleted || res.OrderNo != orders[0].OrderNo || res.ConversationID != conv || res.RecordID == "" ||
		*res.Duplicate || res.Outcome != "resolved" || e.ID() != "oms:archive:"+conv {
		t.Fatalf("%s %s %+v", e.Type(), e.ID(), res)
	}
	second := tb.closed(t, conv, "客户问题已解决")
	var again oms.ArchiveResult
	tb.result(t, second.ID(), &again)
	if !*again.Duplicate || again.RecordID != res.RecordID {
		t.Fatalf("%+v", again)
	}
	recs := tb.oms.ServiceRecords()
	if len(recs) != 1 || len(tb.env.Records(sim.Filter{Vendor: "oms", Op: omssim.OpArchive})) != 1 || tb.oms.Duplicates() != 1 {
		t.Fatalf("%d records written, %d duplicates", len(recs), tb.oms.Duplicates())
	}
	r := recs[0]
	if r.ExternalID != conv || r.Agent != "agent-0042" || r.Outcome != "resolved" || strings.Join(r.Channels, ",") != "wechatkf,sms" ||
		r.OpenedAt != "2026-11-27 16:00:00" || r.ClosedAt != "2026-11-27 16:20:00" || !strings.Contains(r.Summary, "客户问题已解决") {
		t.Fatalf("%+v", r)
	}
	if f := leaks(r.Summary); len(f) > 0 {
		t.Fatalf("summary leaks %v: %s", f, r.Summary)
	}
	// One result event stored: the second publish of the same id was dropped by JetStream.
	if n := tb.bus.StoredCount(t, bus.StreamTool, oms.TypeArchiveCompleted); n != 1 {
		t.Fatalf("%d archive results stored", n)
	}

	// An order looked up by number is the one archived on; an idle close is outcome idle.
	conv2 := uuid.NewString()
	tb.result(t, tb.lookup(t, conv2, "phone", c.Phone).ID(), &a)
	tb.result(t, tb.lookup(t, conv2, "order_no", orders[1].OrderNo).ID(), &a)
	var res2 oms.ArchiveResult
	tb.result(t, tb.closed(t, conv2, "idle").ID(), &res2)
	if res2.OrderNo != orders[1].OrderNo || res2.Outcome != "idle" {
		t.Fatalf("%+v", res2)
	}

	// A conversation without order lookups: nothing archived, nothing published.
	quiet := tb.closed(t, uuid.NewString(), "closed by agent")
	conv3 := uuid.NewString()
	var res3 oms.ArchiveResult
	tb.result(t, tb.lookup(t, conv3, "phone", c.Phone).ID(), &a)
	// The OMS refuses the record: failed at once (a refusal is not retried).
	if err := tb.env.SetFault("oms "+omssim.OpArchive, sim.Fault{ErrorRatio: 1, Code: "40002"}); err != nil {
		t.Fatal(err)
	}
	e = tb.result(t, tb.closed(t, conv3, "closed by agent").ID(), &res3)
	if e.Type() != oms.TypeArchiveFailed || res3.ErrorCode != "40002" || res3.Fallback == nil {
		t.Fatalf("%s %+v", e.Type(), res3)
	}
	tb.mu.Lock()
	n := len(tb.seen[quiet.ID()])
	tb.mu.Unlock()
	if n != 0 || len(tb.oms.ServiceRecords()) != 2 {
		t.Fatalf("a conversation without lookups produced %d results; %d records", n, len(tb.oms.ServiceRecords()))
	}

	// Audit records hold no personal data.
	tb.stop()
	audits := tb.bus.Events(t, bus.StreamAudit, "omni.audit.oms")
	if len(audits) == 0 {
		t.Fatal("no audit records")
	}
	for _, e := range audits {
		if f := leaks(string(e.Data())); len(f) > 0 {
			t.Fatalf("audit record leaks %v: %s", f, e.Data())
		}
		if strings.Contains(string(e.Data()), strings.TrimPrefix(c.Phone, "+86")) {
			t.Fatalf("audit record holds the phone: %s", e.Data())
		}
	}
}

// uuidRE matches UUIDs, blanked before scanning: pii.Scan reads dash-grouped digit runs inside a
// UUID ("…2ca1-4144-9903-54ca…") as a phone number.
var uuidRE = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)

// leaks returns the unmasked personal data in s (ids aside).
func leaks(s string) []pii.Finding { return pii.Scan(uuidRE.ReplaceAllString(s, "<uuid>")) }
