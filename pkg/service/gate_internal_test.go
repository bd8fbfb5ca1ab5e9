package service

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

// addrHandler is a slog handler that hands over the "http" attribute of the "service started"
// record: the address a standalone service listens on.
type addrHandler struct {
	slog.Handler
	addr chan string
}

func (h addrHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "service started" {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "http" {
				h.addr <- a.Value.String()
			}
			return true
		})
	}
	return nil
}

func (h addrHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h addrHandler) WithAttrs([]slog.Attr) slog.Handler { return h }

// TestStandaloneGatesHooks: a standalone service (Main's harness) answers its webhooks 503 with
// Retry-After until it has mounted them and started, then serves them, and unknown hooks 404.
func TestStandaloneGatesHooks(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	s := Service{Name: "example", NoBus: true, Run: func(ctx context.Context, d Deps) error {
		<-release
		d.Mux.HandleFunc("POST /hooks/example/messages", func(w http.ResponseWriter, _ *http.Request) {})
		d.MarkStarted()
		<-ctx.Done()
		return nil
	}}
	h := addrHandler{Handler: slog.DiscardHandler, addr: make(chan string, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runStandalone(ctx, s, Base{HTTPAddr: "127.0.0.1:0", ShutdownTimeout: 5 * time.Second}, slog.New(h))
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("service stopped with %v", err)
		}
	}()
	var base string
	select {
	case base = <-h.addr:
	case err := <-done:
		t.Fatalf("service exited: %v", err)
	}
	// post returns the answer's status and headers (its body is read and closed).
	post := func(path string) (resp struct {
		StatusCode int
		Header     http.Header
	}) {
		t.Helper()
		r, err := http.Post(base+path, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
		resp.StatusCode, resp.Header = r.StatusCode, r.Header
		return resp
	}
	if resp := post("/hooks/example/messages"); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("webhook while starting: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	close(release)
	// The service starts on its own schedule: until it has, the unknown hook is gated too.
	for {
		resp := post("/hooks/nobody/x")
		if resp.StatusCode == http.StatusNotFound {
			break
		}
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("unknown webhook answered %d while the service started", resp.StatusCode)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if resp := post("/hooks/example/messages"); resp.StatusCode != http.StatusOK {
		t.Fatalf("webhook once started: %d, want 200", resp.StatusCode)
	}
}
