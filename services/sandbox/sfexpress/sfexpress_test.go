package sfexpress_test

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	wire "github.com/omnibus-dev/omnibus/pkg/wire/sfexpress"
	"github.com/omnibus-dev/omnibus/services/sandbox/sfexpress"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

type bundle struct {
	env *sim.Env
	srv *httptest.Server
	sim *sfexpress.Sim
}

func setup(t *testing.T) bundle {
	t.Helper()
	mux := http.NewServeMux()
	env := sim.NewEnv(mux, "http://127.0.0.1:1/hooks", nil, 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s, err := sfexpress.New(env, sfexpress.Config{PartnerID: "OMNIBUS", Checkword: "check-word"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return bundle{env, srv, s}
}

func (b bundle) call(t *testing.T, req wire.Request) []byte {
	t.Helper()
	resp, err := http.Post(b.srv.URL+"/sandbox/sfexpress"+wire.Path, wire.ContentType, strings.NewReader(req.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("HTTP %d %s", resp.StatusCode, body)
	}
	return body
}

func query(t *testing.T, checkword string, nos ...string) wire.Request {
	msg, _ := json.Marshal(wire.NewRouteQuery(nos, ""))
	return wire.NewRequest("OMNIBUS", checkword, "req-1", wire.ServiceRouteQuery, msg, time.Now())
}

func TestRouteQuery(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, routes, err := wire.ParseRouteResponse(b.call(t, query(t, "check-word", sfexpress.WaybillDelivered, sfexpress.WaybillInDelivery, "SF5550001112223", "bad no")))
	if err != nil {
		t.Fatal(err)
	}
	if len(routes) != 4 {
		t.Fatalf("%d waybills", len(routes))
	}
	if last := routes[0].Routes[len(routes[0].Routes)-1]; last.OpCode != wire.OpDelivered {
		t.Fatalf("known waybill last scan %+v", last)
	}
	if len(routes[2].Routes) == 0 || len(routes[3].Routes) != 0 {
		t.Fatalf("generated %d scans, malformed %d", len(routes[2].Routes), len(routes[3].Routes))
	}
	// Deterministic: the same number gives the same timeline.
	_, again, _ := wire.ParseRouteResponse(b.call(t, query(t, "check-word", "SF5550001112223")))
	a, _ := json.Marshal(routes[2])
	c, _ := json.Marshal(again[0])
	if string(a) != string(c) {
		t.Fatalf("timeline not deterministic:\n%s\n%s", a, c)
	}
	recs := b.env.Records(sim.Filter{Vendor: sfexpress.Vendor})
	if len(recs) != 2 || recs[0].Error != "" || !strings.Contains(recs[0].To, sfexpress.WaybillDelivered) {
		t.Fatalf("records %+v", recs)
	}
}

func TestRejections(t *testing.T) {
	t.Parallel()
	b := setup(t)
	eleven := make([]string, 11)
	for i := range eleven {
		eleven[i] = "SF5550001112223"
	}
	noPartner := query(t, "check-word", "SF1")
	noPartner.PartnerID = "OTHER"
	for _, tc := range []struct {
		name string
		req  wire.Request
		want error
	}{
		{"bad digest", query(t, "wrong-checkword", "SF1234567890123"), wire.ErrBadDigest},
		{"unknown partner", noPartner, wire.ErrNoPermission},
		{"missing param", wire.Request{PartnerID: "OMNIBUS"}, wire.ErrMissing},
		{"too many", query(t, "check-word", eleven...), wire.ErrTooMany},
		{"none", query(t, "check-word"), wire.ErrNoNumber},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := wire.ParseRouteResponse(b.call(t, tc.req)); !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
	failed := true
	if n := len(b.env.Records(sim.Filter{Vendor: sfexpress.Vendor, Failed: &failed})); n != 5 {
		t.Fatalf("%d rejected records, want 5", n)
	}
}

func TestInjectedFaults(t *testing.T) {
	t.Parallel()
	b := setup(t)
	key := sfexpress.Vendor + " " + sfexpress.OpRoutes
	for _, tc := range []struct {
		code string
		want error
	}{{"", wire.ErrSystem}, {"A1005", wire.ErrRateLimited}, {"8003", wire.ErrTooMany}} {
		if err := b.env.SetFault(key, sim.Fault{ErrorRatio: 1, Code: tc.code}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := wire.ParseRouteResponse(b.call(t, query(t, "check-word", "SF1234567890123"))); !errors.Is(err, tc.want) {
			t.Fatalf("code %q: err %v, want %v", tc.code, err, tc.want)
		}
	}
	_ = b.env.SetFault(key, sim.Fault{ErrorRatio: 1, Code: "http_503"})
	resp, err := http.Post(b.srv.URL+"/sandbox/sfexpress"+wire.Path, wire.ContentType, strings.NewReader(query(t, "check-word", "SF1").Encode()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("http_503 answered %d", resp.StatusCode)
	}
	if st := b.env.Stats()[key]; st.Calls != 4 || st.Injected != 4 {
		t.Fatalf("stats %+v", st)
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	env := sim.NewEnv(mux, "", nil, 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
	now := time.Unix(1725321547, 0)
	if _, err := sfexpress.New(env, sfexpress.Config{PartnerID: "OMNIBUS", Checkword: "check-word", RateLimit: 2, Now: func() time.Time { return now }}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	b := bundle{env: env, srv: srv}
	var last error
	for range 3 {
		_, _, last = wire.ParseRouteResponse(b.call(t, query(t, "check-word", "SF1234567890")))
	}
	if !errors.Is(last, wire.ErrRateLimited) {
		t.Fatalf("third call in a second: %v", last)
	}
}
