package sim_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

func TestFaultStatus(t *testing.T) {
	t.Parallel()
	for code, want := range map[string]struct {
		status     int
		retryAfter string
	}{
		"":         {500, ""},
		"503":      {503, ""},
		"http_404": {404, ""},
		"429":      {429, "1"},
		"429:7":    {429, "7"},
		"200":      {500, ""}, // not a failure status
		"nonsense": {500, ""},
	} {
		if s, ra := sim.FaultStatus(code); s != want.status || ra != want.retryAfter {
			t.Errorf("FaultStatus(%q) = %d %q, want %d %q", code, s, ra, want.status, want.retryAfter)
		}
	}
}

func TestProcessed(t *testing.T) {
	t.Parallel()
	for code, want := range map[string]struct {
		worked   bool
		failCode string
	}{
		"503":           {false, "503"},
		"processed":     {true, ""},
		"processed_502": {true, "502"},
	} {
		var worked atomic.Bool
		var failed string
		f := sim.Processed(func(http.ResponseWriter, *http.Request) { worked.Store(true) },
			func(_ http.ResponseWriter, _ *http.Request, c string) { failed = c })
		f(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/", nil), code)
		if worked.Load() != want.worked || failed != want.failCode {
			t.Errorf("%q: worked %v, fail(%q); want %v, fail(%q)", code, worked.Load(), failed, want.worked, want.failCode)
		}
	}
	t.Run("drop", func(t *testing.T) {
		t.Parallel()
		defer func() {
			if err, _ := recover().(error); !errors.Is(err, http.ErrAbortHandler) {
				t.Fatalf("recovered %v, want http.ErrAbortHandler", err)
			}
		}()
		sim.Processed(func(http.ResponseWriter, *http.Request) {}, nil)(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/", nil), "processed_drop")
	})
}

func TestRequireAuthorization(t *testing.T) {
	t.Parallel()
	h := sim.RequireAuthorization("Basic abc", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) },
		func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusUnauthorized) })
	for auth, want := range map[string]int{"Basic abc": 204, "Basic abd": 401, "": 401} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", auth)
		w := httptest.NewRecorder()
		h(w, r)
		if w.Code != want {
			t.Errorf("Authorization %q: %d, want %d", auth, w.Code, want)
		}
	}
}

func TestDeliver(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n := calls.Add(1); n < 3 || r.Header.Get("X-Attempt-Signed") != "yes" {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	sign := func(h http.Header) { h.Set("X-Attempt-Signed", "yes") }
	if err := sim.Deliver(context.Background(), srv.Client(), srv.URL, []byte(`{}`), sign); err != nil || calls.Load() != 3 {
		t.Fatalf("Deliver = %v after %d calls, want success on the third", err, calls.Load())
	}
	calls.Store(-10) // every attempt fails
	err := sim.Deliver(context.Background(), srv.Client(), srv.URL, []byte(`{}`), sign)
	if err == nil || calls.Load() != -10+sim.WebhookAttempts {
		t.Fatalf("Deliver = %v after %d calls", err, calls.Load()+10)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls.Store(-10)
	if err := sim.Deliver(ctx, srv.Client(), srv.URL, []byte(`{}`), sign); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Deliver = %v", err)
	}
}

func TestMessagesAndParts(t *testing.T) {
	t.Parallel()
	m := sim.Messages{"isv.X": "非法"}
	if e := m.Err("isv.X", "detail"); e.Code != "isv.X" || e.Message != "非法 detail" || e.Error() != "isv.X: 非法 detail" {
		t.Fatalf("%+v", e)
	}
	if e := m.Err("Unknown"); e.Message != "Unknown" {
		t.Fatalf("%+v", e)
	}
	long := string(make([]rune, 70))
	for _, tc := range []struct {
		sign   string
		params []string
		want   int
	}{{"omnibus", []string{"你好"}, 1}, {"", []string{long[:68]}, 1}, {"", []string{long}, 2}, {"", []string{long, long}, 3}} {
		if got := sim.SMSParts(tc.sign, tc.params); got != tc.want {
			t.Errorf("SMSParts(%q, %d params) = %d, want %d", tc.sign, len(tc.params), got, tc.want)
		}
	}
	if !sim.AllDigits("0123") || sim.AllDigits("") || sim.AllDigits("12a") {
		t.Error("AllDigits")
	}
}
