package telemetry_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/omnibus-dev/omnibus/pkg/telemetry"
)

// receiver is an OTLP/HTTP receiver: it keeps the spans posted to /v1/traces and counts the
// metric exports posted to /v1/metrics.
type receiver struct {
	mu      sync.Mutex
	spans   map[string]string // span name → trace id (hex)
	service []string
	metrics int
	headers http.Header
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.headers = r.Header.Clone()
	switch r.URL.Path {
	case "/v1/traces":
		var req coltrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, rs := range req.ResourceSpans {
			for _, a := range rs.Resource.Attributes {
				if a.Key == "service.name" {
					rc.service = append(rc.service, a.Value.GetStringValue())
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					rc.spans[s.Name] = string(hex(s.TraceId))
				}
			}
		}
	case "/v1/metrics":
		rc.metrics++
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
}

func hex(b []byte) []byte {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return out
}

func lookup(m map[string]string) telemetry.Option {
	return telemetry.WithLookup(func(k string) (string, bool) { v, ok := m[k]; return v, ok })
}

// With OTEL_EXPORTER_OTLP_ENDPOINT set, spans and metrics reach an OTLP/HTTP receiver (with the
// configured headers and service name); the HTTP handler continues the caller's trace and names
// its span by route; /metrics has the request duration by route.
func TestExportsOverOTLP(t *testing.T) {
	rc := &receiver{spans: map[string]string{}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	tel, err := telemetry.Setup(context.Background(), "svc", lookup(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL, "OTEL_EXPORTER_OTLP_HEADERS": "x-tenant=acme%20cc",
		"OTEL_SERVICE_NAME": "omnibus-test", "OTEL_METRIC_EXPORT_INTERVAL": "100000",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(tel.Exports, srv.URL+"/v1/traces") || !strings.Contains(tel.Exports, srv.URL+"/v1/metrics") {
		t.Fatalf("exports %q", tel.Exports)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /hooks/sms/{account}", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	app := httptest.NewServer(tel.HTTPHandler(mux, "omnibus"))
	defer app.Close()
	const parent = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, _ := http.NewRequest(http.MethodPost, app.URL+"/hooks/sms/acct-1", strings.NewReader("{}"))
	req.Header.Set("traceparent", "00-"+parent+"-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// An event stream (hours long) is not traced.
	mux.HandleFunc("GET /api/events", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	sse, _ := http.NewRequest(http.MethodGet, app.URL+"/api/events", nil)
	sse.Header.Set("Accept", "text/event-stream")
	if resp, err = http.DefaultClient.Do(sse); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	rec := httptest.NewRecorder()
	tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if !strings.Contains(rec.Body.String(), `http_route="/hooks/sms/{account}"`) {
		t.Errorf("/metrics lacks the request duration by route:\n%s", grep(rec.Body.String(), "http_server"))
	}
	if err := tel.Shutdown(context.Background()); err != nil { // flushes both exporters
		t.Fatal(err)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if _, traced := rc.spans["GET /api/events"]; traced {
		t.Error("the event stream was traced")
	}
	if got := rc.spans["POST /hooks/sms/{account}"]; got != parent {
		t.Errorf("spans %v: want the webhook's span in the caller's trace %s", rc.spans, parent)
	}
	if len(rc.service) == 0 || rc.service[0] != "omnibus-test" {
		t.Errorf("service.name %v", rc.service)
	}
	if rc.metrics == 0 {
		t.Error("no metric export reached the receiver")
	}
	if rc.headers.Get("X-Tenant") != "acme cc" {
		t.Errorf("headers %v", rc.headers)
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// The OTEL_* variables that cannot work are refused with the way out; none, no endpoint or a
// disabled SDK export nothing.
func TestExportConfig(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		env     map[string]string
		exports string
		err     string
	}{
		{map[string]string{}, "", ""},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, "", ""},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, "metrics to http://c:4318/v1/metrics every 1m0s", ""},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://c/t", "OTEL_METRICS_EXPORTER": "prometheus"}, "traces to https://c/t", ""},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "", "http/protobuf"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "c:4318"}, "", "want an http(s) URL"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "zipkin"}, "", "want otlp or none"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_METRIC_EXPORT_INTERVAL": "5s"}, "", "milliseconds"},
		{map[string]string{"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment"}, "", "not key=value"},
	} {
		tel, err := telemetry.Setup(context.Background(), "svc", lookup(c.env))
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%v: err %v, want %q", c.env, err, c.err)
			}
		case err != nil:
			t.Errorf("%v: %v", c.env, err)
		default:
			if tel.Exports != c.exports {
				t.Errorf("%v: exports %q, want %q", c.env, tel.Exports, c.exports)
			}
			_ = tel.Shutdown(context.Background())
		}
	}
}

// JSON logs write durations as text (1.5s), as the text format does, not as nanoseconds.
func TestJSONLogDurations(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	telemetry.NewLogger(&b, "json", "info").Info("stopped", "after", 1500*time.Millisecond, "n", 3)
	if !strings.Contains(b.String(), `"after":"1.5s"`) || !strings.Contains(b.String(), `"n":3`) {
		t.Fatalf("log line %s", b.String())
	}
}
