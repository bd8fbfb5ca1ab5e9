package tccc_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	wire "github.com/omnibus-dev/omnibus/pkg/wire/tencent"
	"github.com/omnibus-dev/omnibus/services/sandbox/nls"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	"github.com/omnibus-dev/omnibus/services/sandbox/tccc"
)

func setup(t *testing.T) (*tccc.Sim, *httptest.Server) {
	t.Helper()
	mux := http.NewServeMux()
	env := sim.NewEnv(mux, "", nil, 0, nil)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s, err := tccc.New(env, tccc.Config{SdkAppID: 1400000001, SecretID: "AKIDtest", SecretKey: "key", Base: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, srv
}

func describe(t *testing.T, srv *httptest.Server, key string, req wire.DescribeTelCdrRequest) wire.DescribeTelCdrResponse {
	t.Helper()
	body, _ := json.Marshal(req)
	r, _ := http.NewRequest(http.MethodPost, srv.URL+"/sandbox/tccc/", bytes.NewReader(body))
	r.Header.Set("Content-Type", wire.ContentType)
	r.Header.Set(wire.HeaderAction, wire.ActionDescribeTelCdr)
	r.Header.Set(wire.HeaderVersion, wire.CCCVersion)
	wire.Signer{SecretID: "AKIDtest", SecretKey: key, Service: wire.CCCService}.Sign(r, body, time.Now().Unix())
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out wire.DescribeTelCdrResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// A placed call is listed by DescribeTelCdr (signed for ccc), its recording is served, and the
// sandbox's file transcription hears the catalogue's text on the right channels.
func TestPlacedCallListedServedAndRecognised(t *testing.T) {
	t.Parallel()
	s, srv := setup(t)
	p, err := s.Place(tccc.Call{Customer: "13800138000", Says: []string{"zh-parcel", "en-order-number"}, Lost: true})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Unix()
	out := describe(t, srv, "key", wire.DescribeTelCdrRequest{SdkAppID: 1400000001, StartTimeStamp: now - 3600, EndTimeStamp: now, PageSize: 100})
	if out.Response.Error != nil || out.Response.TotalCount != 1 || out.Response.TelCdrList[0].SessionID != p.CDR.SessionID {
		t.Fatalf("%+v", out.Response)
	}
	if bad := describe(t, srv, "wrong", wire.DescribeTelCdrRequest{SdkAppID: 1400000001, PageSize: 1}); bad.Response.Error == nil ||
		bad.Response.Error.Code != "AuthFailure.SignatureFailure" {
		t.Fatalf("bad signature answered %+v", bad.Response)
	}
	resp, err := http.Get(p.RecordingURL)
	if err != nil {
		t.Fatal(err)
	}
	wav, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	sentences, err := nls.Recognise(wav)
	if err != nil {
		t.Fatal(err)
	}
	if len(sentences) != 2 || sentences[0].Text != p.Said[0] || sentences[0].ChannelID != 0 ||
		sentences[1].Text != p.Said[1] || sentences[1].ChannelID != 1 || sentences[1].BeginTime <= sentences[0].EndTime {
		t.Fatalf("recognised %+v, said %q", sentences, p.Said)
	}
	if !strings.HasSuffix(p.RecordingURL, ".wav") {
		t.Fatal(p.RecordingURL)
	}
}
