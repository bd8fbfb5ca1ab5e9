package connector_test

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
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/pkg/webhook"
)

type cfg struct {
	Secret string `env:"T_SECRET" default:"s"`
}

var spec = connector.Spec{
	Name:     "t",
	Produces: []connector.Route{{Subject: "omni.in.t.message", Type: "omni.channel.message.received"}},
}

func data(id string) map[string]any {
	return map[string]any{"channel": "t", "channel_message_id": id, "from": map[string]string{"kind": "phone", "value": "+8613800138000"},
		"message": map[string]any{"type": "text", "text": "hi"}, "sent_at": "2026-11-27T08:00:00Z"}
}

// verify is the test connectors' signature check: the X-Sig header carries the secret.
func (c *cfg) verify(r *http.Request, _ []byte) error {
	if r.Header.Get("X-Sig") != c.Secret {
		return webhook.ErrSignature
	}
	return nil
}

// run starts a test connector whose webhook publishes to subject (declared or not).
func run(t *testing.T, subject string) (*bustest.Bundle, *httptest.Server) {
	t.Helper()
	b := bustest.New(t)
	mux := http.NewServeMux()
	svc := connector.Define(spec, func(ctx context.Context, rt *connector.Runtime, c *cfg) error {
		return rt.Webhook(connector.Webhook{
			Path: "/in", MaxBody: 64,
			Verify: c.verify,
			Decode: func(_ *http.Request, body []byte) ([]bus.Outgoing, error) {
				if string(body) == "bad" {
					return nil, webhook.ErrMalformed
				}
				e, err := rt.NewEvent("omni.channel.message.received", data(string(body)), event.WithID("t:"+string(body)))
				return []bus.Outgoing{{Subject: subject, Event: e}}, err
			},
		})
	})
	return b, serve(t, b, svc, mux, "/hooks/t/in")
}

// serve runs svc on b and mux until the test ends (failing it if Run fails) and returns a server
// for mux once probe (a webhook path) is mounted.
func serve(t *testing.T, b *bustest.Bundle, svc service.Service, mux *http.ServeMux, probe string) *httptest.Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- svc.Run(ctx, service.Deps{Bus: b.Client, Mux: mux, Log: slog.New(slog.DiscardHandler),
			Env: func(string) (string, bool) { return "", false }})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	bustest.WaitFor(t, 5*time.Second, "webhook mounted", func() bool {
		resp, err := http.Post(srv.URL+probe, "text/plain", strings.NewReader("probe"))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode != http.StatusNotFound
	})
	return srv
}

func post(t *testing.T, url, body, sig string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("X-Sig", sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestInboundFlow(t *testing.T) {
	t.Parallel()
	b, srv := run(t, "omni.in.t.message")
	url := srv.URL + "/hooks/t/in"
	for _, tc := range []struct {
		name, body, sig string
		want            int
	}{
		{"forged", "m1", "wrong", http.StatusUnauthorized},
		{"malformed", "bad", "s", http.StatusBadRequest},
		{"too big", strings.Repeat("x", 65), "s", http.StatusRequestEntityTooLarge},
		{"ok", "m1", "s", http.StatusOK},
	} {
		if got := post(t, url, tc.body, tc.sig); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
	if n := b.StoredCount(t, bus.StreamIn, "omni.in.t.message.*"); n != 1 {
		t.Fatalf("stored %d events, want only the valid one", n)
	}
}

func TestUndeclaredRouteIsRefused(t *testing.T) {
	t.Parallel()
	b, srv := run(t, "omni.in.other.message")
	if got := post(t, srv.URL+"/hooks/t/in", "m1", "s"); got != http.StatusInternalServerError {
		t.Fatalf("status %d for an undeclared subject", got)
	}
	if n := b.StoredCount(t, bus.StreamIn, ">"); n != 0 {
		t.Fatalf("undeclared event published: %d", n)
	}
}

func TestWebhookWithoutVerifyIsRefused(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	svc := connector.Define(spec, func(ctx context.Context, rt *connector.Runtime, _ *cfg) error {
		return rt.Webhook(connector.Webhook{Path: "/x", Decode: func(*http.Request, []byte) ([]bus.Outgoing, error) { return nil, nil }})
	})
	err := svc.Run(context.Background(), service.Deps{Bus: b.Client, Mux: http.NewServeMux(), Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Env: func(string) (string, bool) { return "", false }})
	if err == nil || !strings.Contains(err.Error(), "Verify is required") {
		t.Fatalf("got %v", err)
	}
}

// TestWebhookAnswer: a vendor's check on the push URL (Answer ok) is answered with its JSON
// after the signature check and publishes nothing; other requests go on to Decode.
func TestWebhookAnswer(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	mux := http.NewServeMux()
	svc := connector.Define(spec, func(ctx context.Context, rt *connector.Runtime, c *cfg) error {
		return rt.Webhook(connector.Webhook{
			Path: "/in", Verify: c.verify,
			Answer: func(_ *http.Request, body []byte) (any, bool, error) {
				switch string(body) {
				case "check":
					return map[string]int{"challenge": 12345}, true, nil
				case "bad check":
					return nil, false, webhook.ErrMalformed
				}
				return nil, false, nil
			},
			Decode: func(_ *http.Request, body []byte) ([]bus.Outgoing, error) {
				e, err := rt.NewEvent("omni.channel.message.received", data(string(body)), event.WithID("t:"+string(body)))
				return []bus.Outgoing{{Subject: "omni.in.t.message", Event: e}}, err
			},
		})
	})
	srv := serve(t, b, svc, mux, "/hooks/t/in")
	call := func(body, sig string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/hooks/t/in", strings.NewReader(body))
		req.Header.Set("X-Sig", sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(out))
	}
	if code, body := call("check", "s"); code != http.StatusOK || body != `{"challenge":12345}` {
		t.Errorf("check answered %d %s, want 200 {\"challenge\":12345}", code, body)
	}
	if code, _ := call("check", "wrong"); code != http.StatusUnauthorized {
		t.Errorf("forged check answered %d, want 401", code)
	}
	if code, _ := call("bad check", "s"); code != http.StatusBadRequest {
		t.Errorf("malformed check answered %d, want 400", code)
	}
	if n := b.StoredCount(t, bus.StreamIn, ">"); n != 0 {
		t.Errorf("checks published %d events", n)
	}
	if code, _ := call("m1", "s"); code != http.StatusOK {
		t.Errorf("push answered %d", code)
	}
	if n := b.StoredCount(t, bus.StreamIn, ">"); n != 1 {
		t.Errorf("push stored %d events, want 1", n)
	}
}
