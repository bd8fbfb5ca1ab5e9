package service_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/service"
)

// TestStartupGate: while services start, a webhook without a route yet answers 503 with
// Retry-After and the services still starting (vendors retry a 503, not a 404); a mounted webhook
// is served at once; other paths are not gated. Once every service has started, an unknown
// webhook gets the mux's 404 again.
func TestStartupGate(t *testing.T) {
	t.Parallel()
	type testBundle struct {
		startup *service.Startup
		mux     *http.ServeMux
		gate    http.Handler
	}
	setup := func(t *testing.T) testBundle {
		t.Helper()
		st := service.NewStartup("example", "sms")
		mux := http.NewServeMux()
		ok := func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }
		mux.HandleFunc("POST /hooks/example/messages", ok) // example has mounted its webhook
		mux.HandleFunc("GET /hooks/example/verify", ok)
		mux.HandleFunc("GET /{$}", ok) // another service's root page
		mux.HandleFunc("GET /healthz", ok)
		return testBundle{startup: st, mux: mux, gate: st.Gate(mux)}
	}
	serve := func(h http.Handler, method, path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader("{}")))
		return rec
	}
	for _, tc := range []struct {
		name         string
		method, path string
		starting     int // status while sms still starts
		started      int // status once every service has started
	}{
		{"hook not mounted yet", "POST", "/hooks/sms/aliyun/up", 503, 404},
		{"hook of no connector", "POST", "/hooks/nobody/x", 503, 404},
		{"hook prefix itself", "GET", "/hooks/", 503, 404},
		{"mounted hook", "POST", "/hooks/example/messages", 200, 200},
		{"mounted hook, other method", "POST", "/hooks/example/verify", 503, 405},
		{"not a hook", "GET", "/api/conversations", 404, 404},
		{"health", "GET", "/healthz", 200, 200},
		{"root page", "GET", "/", 200, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.startup.Started("example")
			rec := serve(b.gate, tc.method, tc.path)
			if rec.Code != tc.starting {
				t.Fatalf("while starting: %d %q, want %d", rec.Code, rec.Body, tc.starting)
			}
			if rec.Code == http.StatusServiceUnavailable {
				if got := rec.Header().Get("Retry-After"); got != "1" {
					t.Errorf("Retry-After %q, want 1", got)
				}
				if body := rec.Body.String(); !strings.Contains(body, "starting: sms") {
					t.Errorf("503 body %q does not say what is still starting", body)
				}
			}
			b.startup.Started("sms")
			if rec := serve(b.gate, tc.method, tc.path); rec.Code != tc.started {
				t.Fatalf("once started: %d %q, want %d", rec.Code, rec.Body, tc.started)
			}
			if rec := serve(b.mux, tc.method, tc.path); rec.Code != tc.started {
				t.Fatalf("the mux itself answers %d, want %d (the gate must not change it)", rec.Code, tc.started)
			}
		})
	}
}
