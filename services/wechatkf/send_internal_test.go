package wechatkf

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/audit"
	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
	"github.com/omnibus-dev/omnibus/pkg/resilience/resiliencetest"
	"github.com/omnibus-dev/omnibus/pkg/wire/wecom"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	wecomsim "github.com/omnibus-dev/omnibus/services/sandbox/wecom"
)

// TestSendOutcomes checks, against the WeCom sandbox, what each vendor answer makes of a send
// command: the error the bus acts on (transient, retry-after) or the status published.
func TestSendOutcomes(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	env := sim.NewEnv(mux, "http://127.0.0.1:0/hooks", nil, 0, log)
	s, err := wecomsim.New(env, wecomsim.Config{CorpID: "ww1", Secret: "sec", Token: "tok", EncodingAESKey: "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"})
	if err != nil {
		t.Fatal(err)
	}
	s.Deliver(wecom.Message{ExternalUserID: "wmU", MsgType: "text", Text: &wecom.Text{Content: "hi"}})
	// The registry keeps its audit records in memory and its metrics in a registry of its own.
	records := &audit.Memory{}
	meter, prom := resiliencetest.Meter()
	reg, err := resilience.New(resilience.Options{Service: Spec.Name, Audit: records, Log: log,
		MeterProvider: meter, Env: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close(context.Background()) })
	api, err := newClient(&Config{CorpID: "ww1", Secret: "sec", APIBase: srv.URL + "/sandbox/wecom"}, reg, log)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var published []bus.Outgoing
	snd := &sender{api: api, openKfID: s.Config().OpenKfID, source: "/connectors/wechatkf", log: log,
		publish: func(_ context.Context, b ...bus.Outgoing) error {
			mu.Lock()
			defer mu.Unlock()
			published = append(published, b...)
			return nil
		}}
	for _, tc := range []struct {
		fault      string // "-" none
		transient  bool
		retryAfter time.Duration
		status     string
		code       string
		calls      int64  // kf/send_msg calls made (never retried by the pipeline)
		outcome    string // of each call's audit record
	}{
		{fault: "-", status: "sent", calls: 1, outcome: "ok"},
		{fault: "", transient: true, calls: 1, outcome: "error"},
		{fault: "http_502", transient: true, calls: 1, outcome: "error"},
		{fault: "45009", transient: true, retryAfter: rateLimitWait, calls: 1, outcome: "rate_limited"},
		{fault: "42001", transient: true, calls: 2, outcome: "permanent"}, // refreshed once and retried, then left to the bus
		{fault: "40014", transient: true, calls: 2, outcome: "permanent"},
		{fault: "95018", status: "failed", code: "95018", calls: 1, outcome: "permanent"},
		{fault: "95001", status: "failed", code: "95001", calls: 1, outcome: "permanent"},
		{fault: "40096", status: "failed", code: "40096", calls: 1, outcome: "permanent"},
	} {
		f := sim.Fault{}
		if tc.fault != "-" {
			f = sim.Fault{ErrorRatio: 1, Code: tc.fault}
		}
		if err := env.SetFault("wecom kf/send_msg", f); err != nil {
			t.Fatal(err)
		}
		e, err := event.New(TypeSend, "/desk", map[string]any{"channel": "wechatkf",
			"to": map[string]string{"kind": "wecom_external_userid", "value": "wmU"}, "message": map[string]any{"type": "text", "text": "hello"}})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		published = nil
		mu.Unlock()
		before, recsBefore := env.Stats()["wecom kf/send_msg"].Calls, len(opRecords(records, "send_msg"))
		err = snd.handle(context.Background(), bus.Delivery{Event: e})
		calls := env.Stats()["wecom kf/send_msg"].Calls - before
		// One audit record per call, naming the command.
		recs := opRecords(records, "send_msg")[recsBefore:]
		if int64(len(recs)) != calls {
			t.Errorf("fault %q: %d audit records for %d send_msg calls", tc.fault, len(recs), calls)
		}
		for _, r := range recs {
			if r.Outcome != tc.outcome || r.Attempts != 1 || r.CorrelationID != e.ID() || r.Idempotent {
				t.Errorf("fault %q: record %+v, want outcome %s, 1 attempt, correlation %s", tc.fault, r, tc.outcome, e.ID())
			}
		}
		mu.Lock()
		got := published
		mu.Unlock()
		if calls != tc.calls {
			t.Errorf("fault %q: %d send_msg calls, want %d", tc.fault, calls, tc.calls)
		}
		if tc.transient {
			d, hasDelay := bus.RetryDelay(err)
			if err == nil || bus.IsPermanent(err) || len(got) != 0 || (tc.retryAfter > 0) != hasDelay || d != tc.retryAfter {
				t.Errorf("fault %q: err %v (delay %s), %d statuses; want a transient error, retry after %s, no status", tc.fault, err, d, len(got), tc.retryAfter)
			}
			continue
		}
		if err != nil || len(got) != 1 {
			t.Errorf("fault %q: err %v, %d statuses", tc.fault, err, len(got))
			continue
		}
		var st struct{ Status, ErrorCode string }
		var raw map[string]json.RawMessage
		_ = json.Unmarshal(got[0].Event.Data(), &raw)
		_ = json.Unmarshal(raw["status"], &st.Status)
		_ = json.Unmarshal(raw["error_code"], &st.ErrorCode)
		if st.Status != tc.status || st.ErrorCode != tc.code || got[0].Event.ID() != "wechatkf:status:"+e.ID() || got[0].Subject != SubjectStatus {
			t.Errorf("fault %q: status %+v id %s", tc.fault, st, got[0].Event.ID())
		}
	}
	// Every call of every route is one record and one count in omnibus_vendor_calls_total.
	for _, op := range []struct{ route, sim string }{{"send_msg", "kf/send_msg"}, {"gettoken", "gettoken"}} {
		calls := env.Stats()["wecom "+op.sim].Calls
		if n := len(opRecords(records, op.route)); int64(n) != calls || calls == 0 {
			t.Errorf("wecom %s: %d audit records for %d calls", op.route, n, calls)
		}
		n := 0.0
		for _, c := range resiliencetest.VendorCalls(t, prom, "wecom", op.route) {
			n += c
		}
		if int64(n) != calls {
			t.Errorf("omnibus_vendor_calls_total{vendor=wecom,op=%s} = %g, want %d", op.route, n, calls)
		}
	}
}

func opRecords(m *audit.Memory, op string) []audit.Record {
	var out []audit.Record
	for _, r := range m.Records() {
		if r.Service != Spec.Name || r.Vendor != "wecom" {
			panic("record of another service or vendor")
		}
		if r.Op == op {
			out = append(out, r)
		}
	}
	return out
}
