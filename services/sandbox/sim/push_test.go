package sim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim/simtest"
)

// hook is a fake connector webhook: it records every pushed batch and refuses the first fail
// requests with a 503.
type hook struct {
	mu       sync.Mutex
	fail     int
	requests int
	batches  [][]int
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.requests++
	if r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "content type", http.StatusUnsupportedMediaType)
		return
	}
	if h.fail > 0 {
		h.fail--
		http.Error(w, `{"error":"not stored"}`, http.StatusServiceUnavailable)
		return
	}
	var batch []int
	if err := json.Unmarshal(b, &batch); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.batches = append(h.batches, batch)
}

func (h *hook) state() (requests int, batches [][]int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.requests, slices.Clone(h.batches)
}

func serve(t *testing.T, h *hook) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// lockedBuf collects log lines from the pushes' goroutines.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestPusherBatchesUpToMax(t *testing.T) {
	t.Parallel()
	h := &hook{}
	g := sim.NewGroup()
	t.Cleanup(g.Close)
	p := sim.NewPusher[int](g, sim.PushOptions{Name: "test", URL: serve(t, h), Delay: 100 * time.Millisecond, Max: 2})
	p.Add(1, 2, 3)
	p.Add(4, 5) // within Delay: joins the same push
	var batches [][]int
	simtest.WaitFor(t, "five items pushed", func() bool {
		_, batches = h.state()
		n := 0
		for _, b := range batches {
			n += len(b)
		}
		return n >= 5
	})
	var all []int
	for _, b := range batches {
		if len(b) == 0 || len(b) > 2 {
			t.Errorf("batch %v: want 1 to Max=2 items", b)
		}
		all = append(all, b...)
	}
	slices.Sort(all)
	if !slices.Equal(all, []int{1, 2, 3, 4, 5}) {
		t.Fatalf("pushed %v, want each item once", all)
	}
}

func TestPusherRepushesThenDrops(t *testing.T) {
	t.Parallel()
	t.Run("refused once", func(t *testing.T) {
		t.Parallel()
		h := &hook{fail: 1}
		g := sim.NewGroup()
		t.Cleanup(g.Close)
		p := sim.NewPusher[int](g, sim.PushOptions{URL: serve(t, h), Delay: time.Millisecond, Retry: []time.Duration{time.Millisecond}})
		p.Add(7)
		simtest.WaitFor(t, "the re-push", func() bool { _, b := h.state(); return len(b) == 1 })
		if n, b := h.state(); n != 2 || !slices.Equal(b[0], []int{7}) {
			t.Fatalf("%d requests, batches %v: want the same batch pushed again after the refusal", n, b)
		}
	})
	t.Run("refused always", func(t *testing.T) {
		t.Parallel()
		h := &hook{fail: 1 << 30}
		var logs lockedBuf
		g := sim.NewGroup()
		t.Cleanup(g.Close)
		p := sim.NewPusher[int](g, sim.PushOptions{Name: "receipts", URL: serve(t, h), Delay: time.Millisecond,
			Retry: []time.Duration{time.Millisecond, time.Millisecond}, Log: slog.New(slog.NewTextHandler(&logs, nil))})
		p.Add(7)
		simtest.WaitFor(t, "the batch dropped", func() bool { return strings.Contains(logs.String(), "dropped after retries") })
		g.Close()
		if n, _ := h.state(); n != 3 {
			t.Fatalf("%d requests, want the first push and one per Retry wait", n)
		}
		if !strings.Contains(logs.String(), "push=receipts") {
			t.Errorf("log does not name the push:\n%s", logs.String())
		}
	})
}

func TestPusherStops(t *testing.T) {
	t.Parallel()
	h := &hook{}
	url := serve(t, h)

	g := sim.NewGroup()
	p := sim.NewPusher[int](g, sim.PushOptions{URL: url, Delay: time.Hour})
	p.Add(1)
	g.Close() // returns at once: the pending push is cancelled, not waited for
	p.Add(2)  // after Close: dropped

	off := sim.NewGroup()
	t.Cleanup(off.Close)
	sim.NewPusher[int](off, sim.PushOptions{Delay: time.Millisecond}).Add(3) // no URL: off
	off.Close()

	if n, _ := h.state(); n != 0 {
		t.Fatalf("%d pushes after Close or without a URL", n)
	}
}

func TestPostJSON(t *testing.T) {
	t.Parallel()
	h := &hook{fail: 1}
	url := serve(t, h)
	err := sim.PostJSON(context.Background(), http.DefaultClient, url, []byte(`[1]`))
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "not stored") {
		t.Fatalf("refused push: %v, want the status and the answer", err)
	}
	if err := sim.PostJSON(context.Background(), http.DefaultClient, url, []byte(`[1]`)); err != nil {
		t.Fatalf("accepted push: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := sim.PostJSON(ctx, http.DefaultClient, url, []byte(`[1]`)); err == nil {
		t.Fatal("cancelled push: no error")
	}
}
