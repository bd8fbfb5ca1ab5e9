package connector_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/service"
)

func TestHandle(t *testing.T) {
	t.Parallel()
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	tests := []struct {
		name, pattern string
		wantErr       string
	}{
		{"own prefix with method", "GET /w/asset.js", ""},
		{"own prefix without method", "/w/ws", ""},
		{"hooks prefix", "POST /hooks/w/custom", ""},
		{"another connector's path", "GET /x/asset.js", "must start with /w/ or /hooks/w/"},
		{"prefix without the slash", "GET /wx/asset.js", "must start with"},
		{"root", "GET /", "must start with"},
		{"host pattern", "GET example.com/w/a", "must be absolute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			mux := http.NewServeMux()
			var got error
			svc := connector.Define(connector.Spec{Name: "w"}, func(_ context.Context, rt *connector.Runtime, _ *struct{}) error {
				got = rt.Handle(tt.pattern, ok)
				return context.Canceled
			})
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_ = svc.Run(ctx, service.Deps{Mux: mux, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
				Env: func(string) (string, bool) { return "", false }})
			if tt.wantErr == "" {
				if got != nil {
					t.Fatalf("Handle(%q) = %v, want nil", tt.pattern, got)
				}
				path := tt.pattern[strings.IndexByte(tt.pattern, '/'):]
				method := http.MethodGet
				if strings.HasPrefix(tt.pattern, "POST ") {
					method = http.MethodPost
				}
				rec := httptest.NewRecorder()
				mux.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
				if rec.Body.String() != "ok" {
					t.Fatalf("%s %s answered %d %q, want the mounted handler", method, path, rec.Code, rec.Body)
				}
				return
			}
			if got == nil || !strings.Contains(got.Error(), tt.wantErr) {
				t.Fatalf("Handle(%q) = %v, want an error containing %q", tt.pattern, got, tt.wantErr)
			}
		})
	}
}

// TestRoutesMountedConcurrently: setup may mount webhooks and routes from several goroutines;
// every one is recorded (under the runtime's lock) and listed when the connector runs.
func TestRoutesMountedConcurrently(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer // written by the handler (which serializes writes) before Run returns, read after
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	svc := connector.Define(connector.Spec{Name: "w"}, func(_ context.Context, rt *connector.Runtime, _ *struct{}) error {
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for i := range 8 {
			wg.Go(func() { errs <- rt.Handle(fmt.Sprintf("GET /w/asset%d.js", i), ok) })
			wg.Go(func() {
				errs <- rt.Webhook(connector.Webhook{Path: fmt.Sprintf("/hook%d", i), NoSignature: true,
					Decode: func(*http.Request, []byte) ([]bus.Outgoing, error) { return nil, nil }})
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				return err
			}
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- svc.Run(ctx, service.Deps{Mux: http.NewServeMux(), Log: slog.New(slog.NewTextHandler(&logs, nil)),
			Env: func(string) (string, bool) { return "", false }, Started: func() { close(started) }})
	}()
	<-started
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		for _, want := range []string{fmt.Sprintf("GET /w/asset%d.js", i), fmt.Sprintf("POST /hooks/w/hook%d", i)} {
			if !strings.Contains(logs.String(), want) {
				t.Errorf("start-up log lacks %q: %s", want, logs.String())
			}
		}
	}
}
