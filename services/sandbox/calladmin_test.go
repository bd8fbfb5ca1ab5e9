package sandbox

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

// The call admin API refuses what it cannot place, with the reason: an unknown customer (404),
// calls off (409), a body without sentences or with sentences the catalogue lacks (400, naming
// them).
func TestCallAPIRefusals(t *testing.T) {
	t.Parallel()
	people := sim.Population(3, 1)
	post := func(calls *CallScenario, path, body string) (int, string) {
		mux := http.NewServeMux()
		var wg sync.WaitGroup
		callAPI(context.Background(), mux, calls, people, &wg)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, strings.NewReader(body)))
		wg.Wait()
		return rec.Code, rec.Body.String()
	}
	on := &CallScenario{Hotline: "4008001234"} // no dialer: every case below is refused before a call
	for _, c := range []struct {
		calls      *CallScenario
		path, body string
		code       int
		reason     string
	}{
		{on, "/sandbox/_admin/customers/9/call", `{"say":["zh-parcel"]}`, 404, "no customer 9"},
		{nil, "/sandbox/_admin/customers/1/call", `{"say":["zh-parcel"]}`, 409, "simulated calls are off"},
		{on, "/sandbox/_admin/customers/1/call", `{}`, 400, `want {\"script\"`},
		{on, "/sandbox/_admin/customers/1/call", `{"script":"x","say":["zh-parcel"]}`, 400, `want {\"script\"`},
		{on, "/sandbox/_admin/customers/1/call", `{"script":"x"}`, 400, "no call script"},
		{on, "/sandbox/_admin/customers/1/call", `{"say":["zh-parcel"],"pause_ms":-1}`, 400, "pause_ms"},
		{on, "/sandbox/_admin/customers/1/call", `{"say":["zh-parcel","xx-nothing"]}`, 400, "xx-nothing"},
	} {
		code, body := post(c.calls, c.path, c.body)
		if code != c.code || !strings.Contains(body, c.reason) {
			t.Errorf("POST %s %s: %d %s; want %d with %q", c.path, c.body, code, body, c.code, c.reason)
		}
	}
}
