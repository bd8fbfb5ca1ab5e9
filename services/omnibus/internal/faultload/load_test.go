package faultload

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	aliwire "github.com/omnibus-dev/omnibus/pkg/wire/aliyun"
)

// fakeConnector answers SmsUp pushes the way the sms connector does, failing on demand.
type fakeConnector struct {
	mu     sync.Mutex
	seen   map[string]int // sequence_id -> pushes
	answer func(n int) int
	pushes atomic.Int64
}

func (f *fakeConnector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := int(f.pushes.Add(1))
	if r.URL.Path != "/hooks/sms/aliyun/up" || r.URL.Query().Get("token") != SandboxSMSToken {
		http.Error(w, `{"error":"no"}`, http.StatusUnauthorized)
		return
	}
	body, _ := io.ReadAll(r.Body)
	ups, err := aliwire.ParseSmsUp(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	for _, u := range ups {
		f.seen[u.SequenceID.String()]++
	}
	f.mu.Unlock()
	if status := f.answer(n); status != http.StatusOK {
		w.WriteHeader(status)
		return
	}
	_ = json.NewEncoder(w).Encode(aliwire.PushOK)
}

func TestLoad(t *testing.T) {
	t.Parallel()
	type testBundle struct {
		conn *fakeConnector
		srv  *httptest.Server
	}
	setup := func(t *testing.T, answer func(n int) int) (LoadConfig, *testBundle) {
		t.Helper()
		b := &testBundle{conn: &fakeConnector{seen: map[string]int{}, answer: answer}}
		b.srv = httptest.NewServer(b.conn)
		t.Cleanup(b.srv.Close)
		return LoadConfig{Base: b.srv.URL, Rate: 200, Batch: 2, Phones: 3, Run: "123456", RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond}, b
	}
	stop := func(t *testing.T, l *Load) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := l.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("AcknowledgedAfterRetries", func(t *testing.T) {
		t.Parallel()
		// Every third push is refused with a 503 and every fifth with a 404 (route not mounted).
		cfg, b := setup(t, func(n int) int {
			switch {
			case n%3 == 0:
				return http.StatusServiceUnavailable
			case n%5 == 0:
				return http.StatusNotFound
			}
			return http.StatusOK
		})
		l, err := StartLoad(cfg)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		stop(t, l)
		st := l.Ledger().Stats()
		if st.Sent < 10 || st.Acked != st.Sent || st.Pending != 0 || st.Rejected != 0 {
			t.Fatalf("ledger: %s", st)
		}
		if st.Retries() == 0 || st.Answers["503"] == 0 || st.Answers["404"] == 0 {
			t.Fatalf("no retries recorded: %s", st)
		}
		for _, id := range l.Ledger().Acked() {
			if !strings.HasPrefix(id, l.Prefix()) || l.Prefix() != "sms:aliyun:up:9123456" {
				t.Fatalf("id %s, prefix %s", id, l.Prefix())
			}
			seq := strings.TrimPrefix(id, "sms:aliyun:up:")
			if b.conn.seen[seq] == 0 {
				t.Fatalf("%s acknowledged but never pushed", id)
			}
		}
		if len(b.conn.seen) != st.Sent {
			t.Fatalf("the connector saw %d distinct uplinks, the ledger sent %d", len(b.conn.seen), st.Sent)
		}
	})

	t.Run("RejectedIsFinal", func(t *testing.T) {
		t.Parallel()
		cfg, _ := setup(t, func(int) int { return http.StatusOK })
		cfg.Token = "wrong"
		l, err := StartLoad(cfg)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		stop(t, l)
		st := l.Ledger().Stats()
		if st.Sent == 0 || st.Rejected != st.Sent || st.Acked != 0 || st.Answers["401"] == 0 {
			t.Fatalf("ledger: %s", st)
		}
	})

	t.Run("StopGivesUp", func(t *testing.T) {
		t.Parallel()
		cfg, _ := setup(t, func(int) int { return http.StatusServiceUnavailable })
		l, err := StartLoad(cfg)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if err := l.Stop(ctx); err == nil || !strings.Contains(err.Error(), "unacknowledged") {
			t.Fatalf("Stop: %v", err)
		}
		if st := l.Ledger().Stats(); st.Acked != 0 || st.Pending != st.Sent || st.Pending == 0 {
			t.Fatalf("ledger: %s", st)
		}
	})

	t.Run("InvalidConfig", func(t *testing.T) {
		t.Parallel()
		for _, cfg := range []LoadConfig{{}, {Base: "http://x", Run: "12"}, {Base: "http://x", Batch: 101}} {
			if _, err := StartLoad(cfg); err == nil {
				t.Errorf("StartLoad(%+v) succeeded", cfg)
			}
		}
	})
}
