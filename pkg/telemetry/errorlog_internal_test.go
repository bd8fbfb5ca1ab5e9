package telemetry

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
)

// TestErrorLog: OpenTelemetry's errors (a collector that is down) reach the service's log as
// warnings, one per interval, and the next one counts those left out.
func TestErrorLog(t *testing.T) {
	var buf bytes.Buffer
	l := newErrorLog(slog.New(slog.NewJSONHandler(&buf, nil)), time.Hour)
	down := errors.New("traces export: Post \"http://127.0.0.1:1/v1/traces\": connection refused")
	for range 5 {
		l.Handle(down)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "connection refused") || !strings.Contains(lines[0], `"level":"WARN"`) {
		t.Fatalf("after 5 errors in one interval: %q", lines)
	}
	l.mu.Lock()
	l.last = l.last.Add(-2 * time.Hour) // the interval has passed
	l.mu.Unlock()
	buf.Reset()
	l.Handle(down)
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil || rec["similar_errors_not_logged"] != float64(4) || rec["component"] != "opentelemetry" {
		t.Fatalf("next interval: %s (%v)", buf.String(), err)
	}

	// Setup installs it as OpenTelemetry's handler.
	buf.Reset()
	tel, err := Setup(t.Context(), "test", WithLookup(func(string) (string, bool) { return "", false }),
		WithLogger(slog.New(slog.NewJSONHandler(&buf, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tel.Shutdown(t.Context()) }()
	otel.Handle(down)
	if !strings.Contains(buf.String(), "telemetry export failing") {
		t.Fatalf("otel.Handle after Setup logged %q", buf.String())
	}
}
