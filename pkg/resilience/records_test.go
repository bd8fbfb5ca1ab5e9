package resilience_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/omnibus-dev/omnibus/pkg/alert"
	"github.com/omnibus-dev/omnibus/pkg/audit"
	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/pii"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
)

// TestEveryCallOneRecordOnTheBus runs a mix of outcomes through a registry wired to a real
// JetStream server: every call yields exactly one omni.audit.call.recorded event, no record and
// no log line carries an unmasked phone, ID or bank number, the failure ratio raises one alert,
// and the metrics carry the documented names.
func TestEveryCallOneRecordOnTheBus(t *testing.T) {
	t.Parallel()
	bb := bustest.New(t, bus.WithLogger(slog.New(slog.DiscardHandler)))
	v := newVendor(t)
	logs := &syncBuffer{}
	promReg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(promReg), otelprom.WithoutScopeInfo())
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	client := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	t.Cleanup(client.CloseIdleConnections)
	reg, err := resilience.New(resilience.Options{
		Service: "logistics", Bus: bb.Client, HTTPClient: client, MeterProvider: mp, TracerProvider: tp,
		Log:          slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		AlertOptions: alert.Options{MinCalls: 10},
		Env:          func(string) (string, bool) { return "", false },
	})
	if err != nil {
		t.Fatal(err)
	}
	rt := reg.MustRoute(spec("route_query", true, resilience.Settings{MaxAttempts: 2, Backoff: time.Millisecond, MaxBackoff: time.Millisecond}))
	v.set(func(n int64, w http.ResponseWriter, r *http.Request) {
		switch n % 4 {
		case 1:
			ok(n, w, r)
		case 2:
			fail500(n, w, r)
		case 3:
			fmt.Fprintf(w, `{"errcode":40001,"errmsg":"bad credential for %s, id %s"}`, mobile, idCard)
		default:
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	})
	b := &testBundle{vendor: v}
	const calls = 24
	outcomes := map[string]int{}
	for i := range calls {
		_, err := rt.HTTP(context.Background(), resilience.Call{CustomerID: fmt.Sprintf("cust-%d", i), CorrelationID: fmt.Sprintf("req-%d", i), Key: "SF1"}, b.request(), nil)
		outcome := audit.OutcomeOK
		if fail := (*resilience.Error)(nil); err != nil {
			if !asError(err, &fail) {
				t.Fatalf("call %d: %v", i, err)
			}
			outcome = fail.Outcome
		}
		outcomes[outcome]++
	}
	if err := reg.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	evs := bb.Events(t, bus.StreamAudit, audit.Subject("logistics"))
	if len(evs) != calls {
		t.Fatalf("%d audit records on the bus for %d calls", len(evs), calls)
	}
	got := map[string]int{}
	for _, e := range evs {
		if pii.Contains(string(e.Data())) {
			t.Fatalf("audit record leaks personal data: %s", e.Data())
		}
		var r audit.Record
		if err := event.DecodeData(e, &r); err != nil {
			t.Fatal(err)
		}
		got[r.Outcome]++
		if r.TraceID == "" || event.Ext(e, event.ExtTraceParent) == "" || !strings.Contains(event.Ext(e, event.ExtTraceParent), r.TraceID) {
			t.Fatalf("record %s: trace id %q, traceparent %q", e.ID(), r.TraceID, event.Ext(e, event.ExtTraceParent))
		}
		if !strings.HasPrefix(e.Subject(), "cust-") || !strings.HasPrefix(event.CorrelationID(e), "req-") {
			t.Fatalf("record %s: subject %q correlation %q", e.ID(), e.Subject(), event.CorrelationID(e))
		}
	}
	for o, n := range outcomes {
		if got[o] != n {
			t.Fatalf("records by outcome %v, calls by outcome %v", got, outcomes)
		}
	}
	if pii.Contains(logs.String()) {
		t.Fatalf("logs leak personal data: %s", logs.String())
	}
	if n := bb.StoredCount(t, bus.StreamOps, alert.SubjectRaised); n != 1 {
		t.Fatalf("%d alerts raised, want 1", n)
	}
	families, err := promReg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range families {
		names[f.GetName()] = true
		if f.GetName() == "omnibus_vendor_calls_total" {
			var total float64
			for _, m := range f.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["vendor"] != "sfexpress" || labels["op"] != "route_query" || labels["outcome"] == "" {
					t.Fatalf("labels %v", labels)
				}
				total += m.GetCounter().GetValue()
			}
			if total != calls {
				t.Fatalf("omnibus_vendor_calls_total = %g, want %d", total, calls)
			}
		}
	}
	for _, want := range []string{"omnibus_vendor_calls_total", "omnibus_vendor_call_duration_seconds", "omnibus_vendor_breaker_state", "omnibus_vendor_fallbacks_total", "omnibus_audit_records_total"} {
		if !names[want] {
			t.Errorf("metric %s missing (have %v)", want, names)
		}
	}
}

func asError(err error, target **resilience.Error) bool { return errors.As(err, target) }
