package sim_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

func newEnv(t *testing.T, faults map[string]sim.Fault) (*sim.Env, *httptest.Server) {
	t.Helper()
	mux := http.NewServeMux()
	env := sim.NewEnv(mux, "http://127.0.0.1:1/hooks", faults, 3, slog.New(slog.DiscardHandler))
	env.Handle(sim.Route{Vendor: "acme", Op: "send", Pattern: "POST /v1/send",
		Handler: func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			env.Record("acme", "send", "alice", json.RawMessage(b), nil)
			_, _ = w.Write([]byte(`{"ok":true}`))
		},
		Fail: func(w http.ResponseWriter, _ *http.Request, code string) {
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"code":"` + code + `"}`))
		}})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return env, srv
}

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestRouteRecordsAndFaults(t *testing.T) {
	env, srv := newEnv(t, nil)
	if code, body := post(t, srv.URL+"/sandbox/acme/v1/send", `{"n":1}`); code != 200 || body != `{"ok":true}` {
		t.Fatalf("healthy route: %d %s", code, body)
	}
	recs := env.Records(sim.Filter{Vendor: "acme"})
	if len(recs) != 1 || string(recs[0].Data) != `{"n":1}` || recs[0].To != "alice" {
		t.Fatalf("records: %+v", recs)
	}

	// Every call fails with the vendor's code once the admin API sets a 100% error ratio.
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/sandbox/_admin/faults/acme send", strings.NewReader(`{"error_ratio":1,"code":"THROTTLED"}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("set fault: %v %v", err, resp)
	}
	resp.Body.Close()
	if code, body := post(t, srv.URL+"/sandbox/acme/v1/send", `{"n":2}`); code != 429 || body != `{"code":"THROTTLED"}` {
		t.Fatalf("faulty route: %d %s", code, body)
	}
	if n := len(env.Records(sim.Filter{Vendor: "acme"})); n != 1 {
		t.Fatalf("a failed call was recorded: %d records", n)
	}
	st := env.Stats()["acme send"]
	if st.Calls != 2 || st.Injected != 1 {
		t.Fatalf("stats %+v", st)
	}

	// A vendor-wide fault applies to routes without their own; clearing restores health.
	_ = env.SetFault("acme send", sim.Fault{})
	_ = env.SetFault("acme *", sim.Fault{ErrorRatio: 1, Code: "DOWN"})
	if code, _ := post(t, srv.URL+"/sandbox/acme/v1/send", `{}`); code != 429 {
		t.Fatalf("vendor-wide fault not applied: %d", code)
	}
	req, _ = http.NewRequest(http.MethodDelete, srv.URL+"/sandbox/_admin/faults", nil)
	resp, _ = http.DefaultClient.Do(req)
	resp.Body.Close()
	if code, _ := post(t, srv.URL+"/sandbox/acme/v1/send", `{}`); code != 200 {
		t.Fatalf("faults not cleared: %d", code)
	}
}

func TestHangEndsWithClient(t *testing.T) {
	_, srv := newEnv(t, map[string]sim.Fault{"acme send": {TimeoutRatio: 1, Hold: time.Minute}})
	c := &http.Client{Timeout: 100 * time.Millisecond}
	resp, err := c.Post(srv.URL+"/sandbox/acme/v1/send", "application/json", strings.NewReader(`{}`))
	if err == nil {
		_ = resp.Body.Close()
		t.Fatal("a hung route answered")
	}
}

// TestHangPastHoldDropsConnection: when Hold passes before the client gives up, the vendor
// still never answers — the connection drops (an empty 200 would read as success).
func TestHangPastHoldDropsConnection(t *testing.T) {
	_, srv := newEnv(t, map[string]sim.Fault{"acme send": {TimeoutRatio: 1, Hold: 20 * time.Millisecond}})
	resp, err := http.Post(srv.URL+"/sandbox/acme/v1/send", "application/json", strings.NewReader(`{}`))
	if err == nil {
		resp.Body.Close()
		t.Fatalf("a hung route answered %d after its hold", resp.StatusCode)
	}
}

func TestRecordsBoundedAndWait(t *testing.T) {
	env, srv := newEnv(t, nil)
	done := make(chan sim.Record, 1)
	go func() {
		r, err := env.WaitRecord(context.Background(), sim.Filter{Vendor: "acme", After: 4})
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	for i := 0; i < 5; i++ {
		post(t, srv.URL+"/sandbox/acme/v1/send", `{}`)
	}
	if r := <-done; r.Seq != 5 {
		t.Fatalf("waited record seq %d", r.Seq)
	}
	resp, err := http.Get(srv.URL + "/sandbox/_admin/records?vendor=acme")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var recs []sim.Record
	_ = json.NewDecoder(resp.Body).Decode(&recs)
	if len(recs) != 3 || recs[0].Seq != 3 {
		t.Fatalf("kept %d records starting at %d, want the last 3", len(recs), recs[0].Seq)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := env.WaitRecord(ctx, sim.Filter{Vendor: "nobody"}); err == nil {
		t.Fatal("WaitRecord returned without a match")
	}
}

func TestParseFaults(t *testing.T) {
	f, err := sim.ParseFaults(`{"wecom kf/send_msg": {"latency": "200ms", "error_ratio": 0.2, "code": "45009"}, "aliyun *": {"latency": 50}}`)
	if err != nil {
		t.Fatal(err)
	}
	if f["wecom kf/send_msg"].Latency != 200*time.Millisecond || f["aliyun *"].Latency != 50*time.Millisecond {
		t.Fatalf("%+v", f)
	}
	for _, bad := range []string{`{"x": {"error_ratio": 2}}`, `{"x": {"latency": "soon"}}`, `{"x": {"nope": 1}}`, `[1]`} {
		if _, err := sim.ParseFaults(bad); err == nil {
			t.Errorf("ParseFaults(%s) accepted", bad)
		}
	}
	b, _ := json.Marshal(f["wecom kf/send_msg"])
	if !strings.Contains(string(b), `"latency":"200ms"`) {
		t.Fatalf("marshal: %s", b)
	}
}

func TestPopulationDeterministic(t *testing.T) {
	a, b := sim.Population(20, 7), sim.Population(20, 7)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("population differs at %d", i)
		}
		if !strings.HasPrefix(a[i].Phone, "+86") || len(a[i].Phone) != 14 {
			t.Fatalf("phone %q", a[i].Phone)
		}
	}
}

func TestHookURLs(t *testing.T) {
	env := sim.NewEnv(http.NewServeMux(), "http://{connector}:8080/hooks", nil, 0, slog.New(slog.DiscardHandler))
	if got := env.Hook("/ticket/jira"); got != "http://ticket:8080/hooks/ticket/jira" {
		t.Errorf("Hook = %q", got)
	}
	if got := env.HookURL("wechatkf", "/callback"); got != "http://wechatkf:8080/hooks/wechatkf/callback" {
		t.Errorf("HookURL = %q", got)
	}
	one := sim.NewEnv(http.NewServeMux(), "http://127.0.0.1:8080/hooks/", nil, 0, slog.New(slog.DiscardHandler))
	if got := one.Hook("/sms/aliyun/up"); got != "http://127.0.0.1:8080/hooks/sms/aliyun/up" {
		t.Errorf("Hook = %q", got)
	}
}
