package connector_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/config"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/httpguard"
	"github.com/omnibus-dev/omnibus/pkg/service"
)

// TestWebhookFloodLimited: one source flooding a connector's webhooks (signed or forged, through
// Webhook or a /hooks route of Handle) is answered 429 with Retry-After past RATE_WEBHOOK_BURST,
// while another source behind the same trusted proxy, and the same source on another connector,
// still get through.
func TestWebhookFloodLimited(t *testing.T) {
	t.Parallel()
	env := map[string]string{"RATE_WEBHOOK": "1/m", "RATE_WEBHOOK_BURST": "5", "HTTP_TRUSTED_PROXIES": "127.0.0.1/32, ::1"}
	var gcfg httpguard.Config
	if err := config.Load(&gcfg, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	g, err := httpguard.New(gcfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := bustest.New(t)
	mux := http.NewServeMux()
	define := func(name string) service.Service {
		sp := connector.Spec{Name: name, Produces: []connector.Route{{Subject: "omni.in." + name + ".message", Type: "omni.channel.message.received"}}}
		return connector.Define(sp, func(ctx context.Context, rt *connector.Runtime, c *cfg) error {
			if err := rt.Handle("POST /hooks/"+name+"/own", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })); err != nil {
				return err
			}
			return rt.Webhook(connector.Webhook{Path: "/in", Verify: c.verify,
				Decode: func(_ *http.Request, body []byte) ([]bus.Outgoing, error) {
					e, err := rt.NewEvent("omni.channel.message.received", data(string(body)), event.WithID(name+":"+string(body)))
					return []bus.Outgoing{{Subject: "omni.in." + name + ".message", Event: e}}, err
				}})
		})
	}
	for _, name := range []string{"ta", "tb"} {
		svc := define(name)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- svc.Run(ctx, service.Deps{Bus: b.Client, Mux: mux, Log: slog.New(slog.DiscardHandler), Guard: g,
				Env: func(string) (string, bool) { return "", false }})
		}()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	send := func(path, from, body, sig string) (resp struct {
		StatusCode int
		Header     http.Header
	}) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
		req.Header.Set("X-Sig", sig)
		req.Header.Set("X-Forwarded-For", from)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		resp.StatusCode, resp.Header = r.StatusCode, r.Header
		return resp
	}
	bustest.WaitFor(t, 5*time.Second, "webhooks mounted", func() bool {
		return send("/hooks/tb/own", "192.0.2.200", "", "").StatusCode == http.StatusOK &&
			send("/hooks/ta/own", "192.0.2.201", "", "").StatusCode == http.StatusOK
	})
	// The flood: signed pushes and forged ones count alike.
	statuses := map[int]int{}
	for i := range 40 {
		sig := "s"
		if i%2 == 1 {
			sig = "forged"
		}
		resp := send("/hooks/ta/in", "198.51.100.7", fmt.Sprintf("m%d", i), sig)
		statuses[resp.StatusCode]++
		if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
	}
	if statuses[http.StatusTooManyRequests] != 35 || statuses[http.StatusOK]+statuses[http.StatusUnauthorized] != 5 {
		t.Fatalf("flood of 40 with a burst of 5: %v, want 5 through and 35 refused", statuses)
	}
	if got := send("/hooks/ta/own", "198.51.100.7", "", "").StatusCode; got != http.StatusTooManyRequests {
		t.Fatalf("the flooding source on a /hooks route of Handle: %d, want 429", got)
	}
	if got := send("/hooks/ta/in", "198.51.100.8", "other", "s").StatusCode; got != http.StatusOK {
		t.Fatalf("another source: %d, want 200", got)
	}
	if got := send("/hooks/tb/in", "198.51.100.7", "other", "s").StatusCode; got != http.StatusOK {
		t.Fatalf("the flooding source on another connector: %d, want 200", got)
	}
}
