package cainiao_test

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	wire "github.com/omnibus-dev/omnibus/pkg/wire/cainiao"
	"github.com/omnibus-dev/omnibus/services/sandbox/cainiao"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

func TestTraceQuery(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	env := sim.NewEnv(mux, "", nil, 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if _, err := cainiao.New(env, cainiao.Config{ProviderID: "OMNIBUS", SecretKey: "secret+key"}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	call := func(secret, no string) ([]byte, error) {
		payload, _ := json.Marshal(wire.TraceQuery{SupplierID: "S1", DeliveryCode: "YTO", MailNo: no, Type: wire.TypeOrigin})
		req := wire.NewRequest("OMNIBUS", secret, wire.MsgTypeTraceQuery, "", payload)
		resp, err := http.Post(srv.URL+"/sandbox/cainiao"+wire.Path, wire.ContentType, strings.NewReader(req.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return io.ReadAll(resp.Body)
	}
	body, _ := call("secret+key", "YT7512345678901")
	d, err := wire.ParseTraceResponse(body)
	if err != nil || d.MailNo != "YT7512345678901" || len(d.Traces) == 0 {
		t.Fatalf("%+v %v", d, err)
	}
	again, _ := call("secret+key", "YT7512345678901")
	if string(again) != string(body) {
		t.Fatal("trace not deterministic")
	}
	body, _ = call("wrong", "YT7512345678901")
	if _, err := wire.ParseTraceResponse(body); !errors.Is(err, wire.ErrSign) {
		t.Fatalf("bad digest: %v", err)
	}
	body, _ = call("secret+key", "x")
	if _, err := wire.ParseTraceResponse(body); !errors.Is(err, wire.ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	_ = env.SetFault("cainiao "+cainiao.OpTrace, sim.Fault{ErrorRatio: 1})
	body, _ = call("secret+key", "YT7512345678901")
	if _, err := wire.ParseTraceResponse(body); !errors.Is(err, wire.ErrSystem) {
		t.Fatalf("fault: %v", err)
	}
	ok := false
	if n := len(env.Records(sim.Filter{Vendor: cainiao.Vendor, Failed: &ok})); n != 2 {
		t.Fatalf("%d accepted records", n)
	}
}
