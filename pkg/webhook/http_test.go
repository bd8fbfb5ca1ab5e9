package webhook_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/webhook"
)

func TestReadBody(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		body  string
		limit int64
		want  error
	}{
		"within cap":   {body: "hello", limit: 5},
		"over cap":     {body: "hello!", limit: 5, want: webhook.ErrTooLarge},
		"default cap":  {body: strings.Repeat("x", 1<<10)},
		"over default": {body: strings.Repeat("x", int(webhook.MaxBody)+1), want: webhook.ErrTooLarge},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodPost, "/hooks/x", strings.NewReader(tc.body))
			got, err := webhook.ReadBody(httptest.NewRecorder(), r, tc.limit)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if err == nil && string(got) != tc.body {
				t.Fatalf("body = %q, want %q", got, tc.body)
			}
		})
	}
	t.Run("read failure is malformed", func(t *testing.T) {
		t.Parallel()
		r := httptest.NewRequest(http.MethodPost, "/hooks/x", io.NopCloser(failingReader{}))
		if _, err := webhook.ReadBody(httptest.NewRecorder(), r, 0); !errors.Is(err, webhook.ErrMalformed) {
			t.Fatalf("err = %v, want ErrMalformed", err)
		}
	})
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestStatus(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		err  error
		want int
	}{
		"rejection wins": {webhook.Reject(http.StatusForbidden, fmt.Errorf("%w: origin", webhook.ErrMalformed)), http.StatusForbidden},
		"too large":      {fmt.Errorf("%w: 2 MiB", webhook.ErrTooLarge), http.StatusRequestEntityTooLarge},
		"unavailable":    {fmt.Errorf("state: %w", webhook.ErrUnavailable), http.StatusServiceUnavailable},
		"malformed":      {fmt.Errorf("%w: xml", webhook.ErrMalformed), http.StatusBadRequest},
		"signature":      {webhook.ErrSignature, http.StatusUnauthorized},
		"expired":        {webhook.ErrExpired, http.StatusUnauthorized},
		"anything else":  {errors.New("boom"), http.StatusTeapot},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := webhook.Status(tc.err, http.StatusTeapot); got != tc.want {
				t.Fatalf("Status(%v) = %d, want %d", tc.err, got, tc.want)
			}
		})
	}
}

func TestFail(t *testing.T) {
	t.Parallel()
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/hooks/x/messages", nil)
	webhook.Fail(w, r, log, http.StatusServiceUnavailable, errors.New("bus down"), "origin", "https://shop.example")
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("answer %d, Retry-After %q; want 503 with Retry-After 1", w.Code, w.Header().Get("Retry-After"))
	}
	if ct, cc := w.Header().Get("Content-Type"), w.Header().Get("Cache-Control"); ct != "application/json" || cc != "no-store" {
		t.Fatalf("Content-Type %q, Cache-Control %q", ct, cc)
	}
	var body struct{ Error, Reason string }
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error != "Service Unavailable" || body.Reason != "bus down" {
		t.Fatalf("body %q (%v)", w.Body, err)
	}
	for _, want := range []string{"path=/hooks/x/messages", "status=503", `reason="bus down"`, "origin=https://shop.example"} {
		if !strings.Contains(logged.String(), want) {
			t.Errorf("log %q lacks %s", logged.String(), want)
		}
	}

	w = httptest.NewRecorder()
	w.Header().Set("Retry-After", "5")
	webhook.WriteError(w, http.StatusServiceUnavailable, errors.New("full"))
	if got := w.Header().Get("Retry-After"); got != "5" {
		t.Fatalf("Retry-After %q, want the caller's 5", got)
	}
}

func TestWriteNotStored(t *testing.T) {
	t.Parallel()
	w := httptest.NewRecorder()
	webhook.WriteNotStored(w, http.StatusServiceUnavailable, errors.New("jetstream: timeout"))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "1" ||
		!strings.Contains(w.Body.String(), `"error":"not stored, retry"`) || !strings.Contains(w.Body.String(), "jetstream: timeout") {
		t.Fatalf("answer %d %v %q", w.Code, w.Header(), w.Body)
	}
}
