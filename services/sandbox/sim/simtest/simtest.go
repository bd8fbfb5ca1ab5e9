// Package simtest is the test scaffolding the vendor simulators share: a sandbox served by an
// httptest server with a fake connector behind its hook base, recorders for what a simulator
// pushes, a JSON client and a wait. It is for tests only.
package simtest

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

// Sandbox is a sim.Env whose routes Srv serves and whose hook base (Srv's "/hooks" on the hook
// server) reaches the fake connector passed to New.
type Sandbox struct {
	Env *sim.Env
	Srv *httptest.Server
}

// New starts a sandbox whose connector webhooks are served by hook; both servers close with t.
func New(t testing.TB, hook http.Handler) Sandbox {
	t.Helper()
	hooks := httptest.NewServer(hook)
	t.Cleanup(hooks.Close)
	mux := http.NewServeMux()
	env := sim.NewEnv(mux, hooks.URL+"/hooks", nil, 0, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return Sandbox{Env: env, Srv: srv}
}

// Receiver is a fake connector webhook for pushes: it records each as "<path> <body>", refuses
// the next FailNext pushes with 503, a push without ?token=Token with 401 (when Token is set),
// and answers the others with Ack as JSON.
type Receiver struct {
	Token string
	Ack   any

	mu     sync.Mutex
	bodies []string
	fail   int
}

// FailNext makes the next n pushes fail with 503.
func (rc *Receiver) FailNext(n int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.fail = n
}

func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.fail > 0 {
		rc.fail--
		http.Error(w, `{"error":"not stored"}`, http.StatusServiceUnavailable)
		return
	}
	if rc.Token != "" && r.URL.Query().Get("token") != rc.Token {
		http.Error(w, `{"error":"token"}`, http.StatusUnauthorized)
		return
	}
	rc.bodies = append(rc.bodies, r.URL.Path+" "+string(b))
	_ = json.NewEncoder(w).Encode(rc.Ack)
}

// Got returns the accepted pushes so far, oldest first.
func (rc *Receiver) Got() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.bodies...)
}

// Recorder is a fake connector webhook handing each request and its body to Requests and
// Bodies (10 each before it blocks) and answering 200.
type Recorder struct {
	Requests chan *http.Request
	Bodies   chan []byte
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	return &Recorder{Requests: make(chan *http.Request, 10), Bodies: make(chan []byte, 10)}
}

func (rc *Recorder) ServeHTTP(_ http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rc.Requests <- r
	rc.Bodies <- b
}

// Do sends method url with Authorization auth and, when body is not nil, body as JSON; it
// returns the answer's status, header and body.
func Do(t testing.TB, method, url, auth string, body any) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", auth)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, out
}

// WaitFor polls cond every 10 ms and fails t when it is not true within 10 s.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
