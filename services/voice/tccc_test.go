package voice_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/connector/connectortest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/service"
	wire "github.com/omnibus-dev/omnibus/pkg/wire/tencent"
	"github.com/omnibus-dev/omnibus/services/sandbox/nls"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	"github.com/omnibus-dev/omnibus/services/sandbox/tccc"
	"github.com/omnibus-dev/omnibus/services/voice"
)

const (
	tcccApp      = 1400000001
	tcccUser     = "tccc-push"
	tcccPassword = "sandbox-tccc-push-password"
)

// tcccBundle is a voice connector with the TCCC provider, served over HTTP, and the sandbox's
// TCCC and Aliyun NLS (file transcription) it talks to.
type tcccBundle struct {
	bus     *bustest.Bundle
	env     *sim.Env
	tccc    *tccc.Sim
	hook    string // the push URL
	records string // the bucket directory
	vars    map[string]string
	mux     *atomic.Pointer[http.ServeMux]
	cancel  context.CancelFunc
	done    chan error
}

// startTCCC runs it all; extra overrides the connector's environment, simCfg adjusts the
// simulated contact centre.
func startTCCC(t *testing.T, extra map[string]string, simCfg func(*tccc.Config)) *tcccBundle {
	t.Helper()
	b := bustest.New(t, bus.WithLogger(quiet()))
	var voiceMux atomic.Pointer[http.ServeMux]
	voiceSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m := voiceMux.Load(); m != nil {
			m.ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(voiceSrv.Close)
	sandboxMux := http.NewServeMux()
	env := sim.NewEnv(sandboxMux, voiceSrv.URL+"/hooks", nil, 0, quiet())
	sandboxSrv := httptest.NewServer(sandboxMux)
	t.Cleanup(sandboxSrv.Close)
	n, err := nls.New(env, nls.Config{AccessKeyID: "LTAI5tSandboxNls", AccessKeySecret: "sandbox-nls-secret", AppKey: "sandboxNlsAppKey",
		FileTransDelay: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	tb := &tcccBundle{bus: b, env: env, hook: voiceSrv.URL + voice.TCCCPushPath}
	cfg := tccc.Config{SdkAppID: tcccApp, SecretID: "AKIDsandboxCcc", SecretKey: "sandbox-ccc-key", Base: sandboxSrv.URL,
		PushURL: tb.hook, PushUser: tcccUser, PushPassword: tcccPassword, Log: quiet()}
	if simCfg != nil {
		simCfg(&cfg)
	}
	if tb.tccc, err = tccc.New(env, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tb.tccc.Close)
	dir := t.TempDir()
	tb.records = filepath.Join(dir, "recordings")
	vars := map[string]string{
		"VOICE_SIP_LISTEN": "127.0.0.1:" + strconv.Itoa(freePort(t)), "VOICE_RTP_PORTS": rtpRange(t),
		"VOICE_SPOOL_DIR": filepath.Join(dir, "spool"), "VOICE_RECORDING_BUCKET": "file://" + tb.records,
		"VOICE_ALIYUN_ACCESS_KEY_ID": "LTAI5tSandboxNls", "VOICE_ALIYUN_ACCESS_KEY_SECRET": "sandbox-nls-secret", "VOICE_ALIYUN_APPKEY": "sandboxNlsAppKey",
		"VOICE_TCCC_SDK_APP_ID": strconv.Itoa(tcccApp), "VOICE_TCCC_SECRET_ID": "AKIDsandboxCcc", "VOICE_TCCC_SECRET_KEY": "sandbox-ccc-key",
		"VOICE_TCCC_API_URL": sandboxSrv.URL + "/sandbox/tccc/", "VOICE_TCCC_FILETRANS_URL": sandboxSrv.URL + "/sandbox/nls/filetrans/",
		"VOICE_TCCC_PUSH_USER": tcccUser, "VOICE_TCCC_PUSH_PASSWORD": tcccPassword, "VOICE_TCCC_RECONCILE_INTERVAL": "0",
		"VOICE_TCCC_WORK_INTERVAL": "200ms",
	}
	for k, v := range extra {
		vars[k] = v
	}
	tb.vars, tb.mux = vars, &voiceMux
	tb.run(t)
	t.Cleanup(func() { tb.stop(t) })
	return tb
}

// run starts the voice connector on tb's bus and environment and serves it.
func (tb *tcccBundle) run(t *testing.T) {
	t.Helper()
	mux := http.NewServeMux()
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- voice.Service().Run(ctx, service.Deps{Bus: tb.bus.Client, Mux: mux, Log: quiet(), Health: service.NewHealth(),
			Started: func() { close(started) }, Env: func(k string) (string, bool) { v, ok := tb.vars[k]; return v, ok }})
	}()
	select {
	case <-started:
	case err := <-done:
		cancel()
		t.Fatalf("voice exited during setup: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("voice did not start in 10s")
	}
	tb.mux.Store(mux)
	tb.cancel, tb.done = cancel, done
}

// stop stops the voice connector (its pushes then get 404).
func (tb *tcccBundle) stop(t *testing.T) {
	t.Helper()
	if tb.cancel == nil {
		return
	}
	tb.mux.Store(nil)
	tb.cancel()
	tb.cancel = nil
	select {
	case err := <-tb.done:
		if err != nil {
			t.Errorf("voice stopped with %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Error("voice did not stop within 20s")
	}
}

// callEvents returns the stored call events of callID by type.
func (tb *tcccBundle) callEvents(t *testing.T, callID string) map[string][]event.Event {
	t.Helper()
	out := map[string][]event.Event{}
	for _, e := range tb.bus.Events(t, bus.StreamIn, voice.SubjectCall+".>") {
		if e.Subject() == callID {
			out[e.Type()] = append(out[e.Type()], e)
		}
	}
	return out
}

type tcccSegment struct {
	segment
	Source string `json:"source"`
	Model  string `json:"model"`
}

// transcript returns the stored segments of callID, in stream order.
func (tb *tcccBundle) transcript(t *testing.T, callID string) []tcccSegment {
	t.Helper()
	var out []tcccSegment
	for _, e := range tb.bus.Events(t, bus.StreamIn, voice.SubjectTranscript+".>") {
		var s tcccSegment
		if err := event.DecodeData(e, &s); err != nil {
			t.Fatal(err)
		}
		if s.CallID == callID {
			out = append(out, s)
		}
	}
	return out
}

type tcccEnded struct {
	endedData
	Provider       string `json:"provider"`
	ProviderCallID string `json:"provider_call_id"`
	Trunk          string `json:"trunk"`
	EndStatus      string `json:"end_status"`
	Direction      string `json:"direction"`
	DurationMS     int64  `json:"duration_ms"`
}

func (tb *tcccBundle) waitCall(t *testing.T, callID string) tcccEnded {
	t.Helper()
	var got map[string][]event.Event
	bustest.WaitFor(t, 15*time.Second, "call events of "+callID, func() bool {
		got = tb.callEvents(t, callID)
		return len(got[voice.TypeCallEnded]) > 0
	})
	if len(got[voice.TypeCallStarted]) != 1 || len(got[voice.TypeCallEnded]) != 1 {
		t.Fatalf("started %d, ended %d events", len(got[voice.TypeCallStarted]), len(got[voice.TypeCallEnded]))
	}
	var d tcccEnded
	if err := event.DecodeData(got[voice.TypeCallEnded][0], &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func (tb *tcccBundle) waitTranscript(t *testing.T, callID string, n int) []tcccSegment {
	t.Helper()
	var segs []tcccSegment
	bustest.WaitFor(t, 20*time.Second, "transcript of "+callID, func() bool {
		segs = tb.transcript(t, callID)
		return len(segs) >= n
	})
	return segs
}

// A call TCCC took: its pushes publish the call's started and ended events (provider tccc, the
// customer's phone identity, the recording stored in the bucket), then the recording's file
// transcript: final segments in time order with the catalogue's text, speaker by channel.
func TestTCCCPushToEventsAndTranscript(t *testing.T) {
	t.Parallel()
	tb := startTCCC(t, nil, nil)
	p, err := tb.tccc.Place(tccc.Call{Customer: "13800138000", Says: []string{"zh-parcel", "en-order-number", "zh-double-charge"}})
	if err != nil {
		t.Fatal(err)
	}
	id := voice.TCCCCallID(tcccApp, p.CDR.SessionID)
	d := tb.waitCall(t, id)
	if d.Provider != "tccc" || d.Trunk != "tccc" || d.ProviderCallID != p.CDR.SessionID || d.From.Kind != "phone" ||
		d.From.Value != "+8613800138000" || d.Direction != "inbound" || d.HangupSide != "caller" || d.Reason != "completed" ||
		d.EndStatus != "ok" || d.AnsweredAt == "" || d.TalkMS != p.CDR.Duration*1000 {
		t.Fatalf("ended %+v", d)
	}
	if d.Transcript != "pending" {
		t.Errorf("ended transcript %q, want pending (the recording's transcription is to come)", d.Transcript)
	}
	if d.Recording == nil || len(d.Recording.Legs) != 1 || d.Recording.Legs[0].Leg != "call" {
		t.Fatalf("recording %+v", d.Recording)
	}
	leg := d.Recording.Legs[0]
	stored, err := os.ReadFile(filepath.Join(tb.records, strings.TrimPrefix(leg.URL, "file://"+tb.records)))
	if err != nil || int64(len(stored)) != leg.Bytes || leg.DurationMS < 5000 {
		t.Fatalf("stored recording: %v, %d bytes, leg %+v", err, len(stored), leg)
	}
	segs := tb.waitTranscript(t, id, 3)
	want := []string{"caller", "callee", "caller"}
	for i, s := range segs {
		if s.Text != p.Said[i] || s.Speaker != want[i] || !s.Final || s.Source != "recording" || s.Vendor != "aliyun" ||
			s.Model != "filetrans" || s.SegmentID != i || s.EndMS <= s.StartMS || i > 0 && s.StartMS <= segs[i-1].EndMS {
			t.Fatalf("segment %d %+v, said %q", i, s, p.Said[i])
		}
	}
	// The transcript follows the ended event on the stream.
	var endedSeq, firstSeg uint64
	for i, e := range tb.bus.Events(t, bus.StreamIn, "omni.in.voice.>") {
		switch {
		case e.Type() == voice.TypeCallEnded && e.Subject() == id:
			endedSeq = uint64(i) + 1
		case e.Type() == voice.TypeSegment && firstSeg == 0:
			firstSeg = uint64(i) + 1
		}
	}
	if endedSeq == 0 || firstSeg < endedSeq {
		t.Fatalf("ended at %d, first segment at %d", endedSeq, firstSeg)
	}
	// The file-transcription audit records keep statuses and counts, not what was said.
	tb.auditFree(t, "filetrans_result", "SUCCESS", p.Said[0], p.Said[1])
}

// TCCC retries a push (same X-TCCC-PUSH-UUID) and may push a call record again (a new id):
// the call is published once.
func TestTCCCDuplicatePushOnce(t *testing.T) {
	t.Parallel()
	tb := startTCCC(t, map[string]string{"VOICE_TCCC_TRANSCRIBE": "false"}, func(c *tccc.Config) { c.DisableRecordParticipants = true })
	p, err := tb.tccc.Place(tccc.Call{Customer: "13900139000", Says: []string{"en-refund"}, DuplicatePush: true})
	if err != nil {
		t.Fatal(err)
	}
	id := voice.TCCCCallID(tcccApp, p.CDR.SessionID)
	if d := tb.waitCall(t, id); d.Transcript != "" {
		t.Errorf("ended transcript %q, want none said (VOICE_TCCC_TRANSCRIBE=false)", d.Transcript)
	}
	bustest.WaitFor(t, 10*time.Second, "three CDR pushes acknowledged", func() bool {
		n := 0
		for _, r := range tb.env.Records(sim.Filter{Vendor: tccc.Vendor, Op: tccc.OpPush}) {
			if r.Error == "" && strings.Contains(string(r.Data), `"action":"cdr"`) {
				n++
			}
		}
		return n == 3
	})
	tb.waitCall(t, id) // still exactly one started and one ended
	if n := tb.bus.StoredCount(t, bus.StreamIn, voice.SubjectCall+".>"); n != 2 {
		t.Fatalf("%d call events stored, want 2", n)
	}
}

// A call whose CDR push was lost is found by DescribeTelCdr and published once, however many
// reconciliations see it; a call whose push arrived is not published again.
func TestTCCCLostPushReconciled(t *testing.T) {
	t.Parallel()
	tb := startTCCC(t, map[string]string{"VOICE_TCCC_RECONCILE_INTERVAL": "1s", "VOICE_TCCC_TRANSCRIBE": "false"}, nil)
	pushed, err := tb.tccc.Place(tccc.Call{Customer: "13800138001", Says: []string{"en-manager"}})
	if err != nil {
		t.Fatal(err)
	}
	lost, err := tb.tccc.Place(tccc.Call{Customer: "13800138002", Says: []string{"zh-parcel"}, Lost: true})
	if err != nil {
		t.Fatal(err)
	}
	tb.waitCall(t, voice.TCCCCallID(tcccApp, pushed.CDR.SessionID))
	d := tb.waitCall(t, voice.TCCCCallID(tcccApp, lost.CDR.SessionID))
	if d.From.Value != "+8613800138002" || d.Recording == nil {
		t.Fatalf("reconciled call %+v", d)
	}
	// Later passes list both calls again: nothing more is published.
	after := len(tb.env.Records(sim.Filter{Vendor: tccc.Vendor, Op: tccc.OpDescribeTelCdr}))
	bustest.WaitFor(t, 10*time.Second, "two more reconciliations", func() bool {
		return len(tb.env.Records(sim.Filter{Vendor: tccc.Vendor, Op: tccc.OpDescribeTelCdr})) >= after+2
	})
	if n := tb.bus.StoredCount(t, bus.StreamIn, voice.SubjectCall+".>"); n != 4 {
		t.Fatalf("%d call events stored, want 4 (two calls)", n)
	}
	// The audit records of DescribeTelCdr name the sessions, not the customers' numbers.
	tb.auditFree(t, "describe_tel_cdr", lost.CDR.SessionID, "13800138002", "/records/")
}

// auditFree waits for an audit record of op that mentions want, and checks that no audit
// record of the connector contains any of secrets.
func (tb *tcccBundle) auditFree(t *testing.T, op, want string, secrets ...string) {
	t.Helper()
	bustest.WaitFor(t, 15*time.Second, "audit record of "+op, func() bool {
		for _, e := range tb.bus.Events(t, bus.StreamAudit, "omni.audit.voice") {
			if strings.Contains(string(e.Data()), op) && strings.Contains(string(e.Data()), want) {
				return true
			}
		}
		return false
	})
	for _, e := range tb.bus.Events(t, bus.StreamAudit, "omni.audit.voice") {
		for _, s := range secrets {
			if strings.Contains(string(e.Data()), s) {
				t.Fatalf("audit record %s contains %q: %s", e.ID(), s, e.Data())
			}
		}
	}
}

func postPush(t *testing.T, url, action string, body []byte, auth func(*http.Request)) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"?action="+action+"&version=1", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json;charset=utf8")
	req.Header.Set(wire.HeaderPushUUID, fmt.Sprintf("test-%d", time.Now().UnixNano()))
	if auth != nil {
		auth(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func cdrBody(session string) []byte {
	now := time.Now().Unix()
	b, _ := json.Marshal(wire.TelCdrInfo{SdkAppID: tcccApp, SessionID: session, Caller: "13800138000", Callee: "4008001234",
		Time: now - 60, StartTimestamp: now - 60, AcceptTimestamp: now - 50, EndedTimestamp: now - 10, Duration: 40,
		HungUpSide: "seat", EndStatus: 1, EndStatusString: "ok"})
	return b
}

// Pushes without the console's credentials are refused with a reason (401 none, 403 wrong),
// bodies that are not TCCC's shape with 400 and a reason; nothing is published.
func TestTCCCPushRejected(t *testing.T) {
	t.Parallel()
	tb := startTCCC(t, map[string]string{"VOICE_TCCC_TRANSCRIBE": "false"}, nil)
	good := func(r *http.Request) { r.SetBasicAuth(tcccUser, tcccPassword) }
	tests := []struct {
		name, action string
		body         []byte
		auth         func(*http.Request)
		status       int
		reason       string
	}{
		{"no credentials", wire.PushCDR, cdrBody("s1"), nil, http.StatusUnauthorized, "no basic-auth"},
		{"wrong password", wire.PushCDR, cdrBody("s1"), func(r *http.Request) { r.SetBasicAuth(tcccUser, "nope") }, http.StatusForbidden, "wrong"},
		{"bearer instead of basic", wire.PushCDR, cdrBody("s1"), func(r *http.Request) { r.Header.Set("Authorization", "Bearer x") }, http.StatusUnauthorized, "basic-auth"},
		{"not json", wire.PushCDR, []byte("<xml/>"), good, http.StatusBadRequest, "not a JSON object"},
		{"no session", wire.PushCDR, []byte(`{"Time":1,"Direction":0}`), good, http.StatusBadRequest, "SessionId"},
		{"record without url", wire.PushRecord, []byte(`{"SessionId":"s","RecordURL":""}`), good, http.StatusBadRequest, "RecordURL"},
		{"unknown action", "asr", cdrBody("s1"), good, http.StatusBadRequest, "action"},
		{"another instance", wire.PushCDR, bytes.Replace(cdrBody("s1"), []byte(strconv.Itoa(tcccApp)), []byte("1400000999"), 1), good, http.StatusForbidden, "SdkAppId"},
	}
	for _, tt := range tests {
		status, body := postPush(t, tb.hook, tt.action, tt.body, tt.auth)
		if status != tt.status || !strings.Contains(body, `"reason"`) || !strings.Contains(body, tt.reason) {
			t.Errorf("%s: answered %d %s, want %d with a reason about %q", tt.name, status, body, tt.status, tt.reason)
		}
	}
	if n := tb.bus.StoredCount(t, bus.StreamIn, ">"); n != 0 {
		t.Fatalf("refused pushes published %d events", n)
	}
	// The same push with the right credentials is taken.
	if status, body := postPush(t, tb.hook, wire.PushCDR, cdrBody("s1"), good); status != http.StatusOK || !strings.Contains(body, `"ErrCode":0`) {
		t.Fatalf("valid push answered %d %s", status, body)
	}
	d := tb.waitCall(t, voice.TCCCCallID(tcccApp, "s1"))
	if d.HangupSide != "agent" || d.Recording != nil {
		t.Fatalf("%+v", d)
	}
}

// OAuth2 client credentials: TCCC fetches a bearer token from the connector and pushes with it.
func TestTCCCOAuth2Push(t *testing.T) {
	t.Parallel()
	tb := startTCCC(t, map[string]string{"VOICE_TCCC_PUSH_AUTH": "oauth2", "VOICE_TCCC_OAUTH_CLIENT_ID": "tccc",
		"VOICE_TCCC_OAUTH_CLIENT_SECRET": "sandbox-oauth-client-secret", "VOICE_TCCC_TRANSCRIBE": "false"},
		func(c *tccc.Config) {
			c.PushAuth, c.ClientID, c.ClientSecret = "oauth2", "tccc", "sandbox-oauth-client-secret"
		})
	p, err := tb.tccc.Place(tccc.Call{Customer: "13800138003", Says: []string{"en-refund"}})
	if err != nil {
		t.Fatal(err)
	}
	tb.waitCall(t, voice.TCCCCallID(tcccApp, p.CDR.SessionID))
	if status, body := postPush(t, tb.hook, wire.PushCDR, cdrBody("s2"), func(r *http.Request) {
		r.Header.Set("Authorization", "Bearer 99999999999.00")
	}); status != http.StatusForbidden || !strings.Contains(body, "not issued") {
		t.Fatalf("forged token answered %d %s", status, body)
	}
}

// The recording host and the transcription vendor are down when the call ends: the call's
// events are still published (without the recording), the route's breaker opens, and once the
// vendors are back the recording is stored and the transcript published.
func TestTCCCVendorsDownRetriedLater(t *testing.T) {
	t.Parallel()
	tb := startTCCC(t, map[string]string{"RESILIENCE_TCCC_RECORDING_BREAKER_OPEN_FOR": "500ms",
		"RESILIENCE_ALIYUN_FILETRANS_SUBMIT_BREAKER_OPEN_FOR": "500ms"}, nil)
	for _, k := range []string{"tccc recording", "nls SubmitTask"} {
		if err := tb.env.SetFault(k, sim.Fault{ErrorRatio: 1, Code: "503"}); err != nil {
			t.Fatal(err)
		}
	}
	p, err := tb.tccc.Place(tccc.Call{Customer: "13800138004", Says: []string{"en-manager", "zh-order-number"}})
	if err != nil {
		t.Fatal(err)
	}
	id := voice.TCCCCallID(tcccApp, p.CDR.SessionID)
	if d := tb.waitCall(t, id); d.Recording != nil || d.Reason != "completed" {
		t.Fatalf("ended while the recording host is down: %+v", d)
	}
	time.Sleep(1500 * time.Millisecond)
	if segs := tb.transcript(t, id); len(segs) != 0 {
		t.Fatalf("transcript while the vendors are down: %+v", segs)
	}
	_ = tb.env.SetFault("tccc recording", sim.Fault{})
	bustest.WaitFor(t, 20*time.Second, "recording stored after the outage", func() bool {
		m, _ := filepath.Glob(filepath.Join(tb.records, "tccc", "*", "*", "*", id, "call.wav"))
		return len(m) == 1
	})
	_ = tb.env.SetFault("nls SubmitTask", sim.Fault{})
	segs := tb.waitTranscript(t, id, 2)
	if segs[0].Text != p.Said[0] || segs[1].Text != p.Said[1] || segs[1].Speaker != "callee" {
		t.Fatalf("transcript %+v, said %q", segs, p.Said)
	}
}

// A voicemail: the call is unanswered (TCCC's end status kept) and the voicemail is transcribed
// as the customer's, numbered from 1000.
func TestTCCCVoicemail(t *testing.T) {
	t.Parallel()
	tb := startTCCC(t, nil, nil)
	p, err := tb.tccc.Place(tccc.Call{Customer: "13800138005", Says: []string{"zh-double-charge"}, Voicemail: true})
	if err != nil {
		t.Fatal(err)
	}
	id := voice.TCCCCallID(tcccApp, p.CDR.SessionID)
	d := tb.waitCall(t, id)
	if d.Reason != "unanswered" || d.EndStatus != "noSeatOnline" || d.AnsweredAt != "" || d.TalkMS != 0 {
		t.Fatalf("%+v", d)
	}
	segs := tb.waitTranscript(t, id, 1)
	if len(segs) != 1 || segs[0].Text != p.Said[0] || segs[0].Source != "voicemail" || segs[0].SegmentID != 1000 || segs[0].Speaker != "caller" {
		t.Fatalf("%+v", segs)
	}
}

// The TCCC push endpoint passes the connector conformance suite: a call record is the call's
// two events.
func TestTCCCConformance(t *testing.T) {
	t.Parallel()
	req := func(n int, user, password string) *http.Request {
		r, _ := http.NewRequest(http.MethodPost, "http://x"+voice.TCCCPushPath+"?action=cdr&version=1",
			bytes.NewReader(cdrBody("conformance-"+strconv.Itoa(n))))
		r.Header.Set("Content-Type", "application/json;charset=utf8")
		r.Header.Set(wire.HeaderPushUUID, "push-"+strconv.Itoa(n))
		r.SetBasicAuth(user, password)
		return r
	}
	connectortest.Run(t, connectortest.Harness{
		Spec: voice.Spec, Service: voice.Service(), EventsPerMessage: 2,
		Env: map[string]string{"VOICE_TCCC_SDK_APP_ID": strconv.Itoa(tcccApp), "VOICE_TCCC_PUSH_USER": tcccUser,
			"VOICE_TCCC_PUSH_PASSWORD": tcccPassword, "VOICE_TCCC_RECONCILE_INTERVAL": "0", "VOICE_TCCC_TRANSCRIBE": "false"},
		Setup: func(t *testing.T) map[string]string {
			dir := t.TempDir()
			return map[string]string{"VOICE_SIP_LISTEN": "127.0.0.1:" + strconv.Itoa(freePort(t)), "VOICE_RTP_PORTS": rtpRange(t),
				"VOICE_SPOOL_DIR": filepath.Join(dir, "spool"), "VOICE_RECORDING_BUCKET": "file://" + filepath.Join(dir, "rec")}
		},
		Inbound: func(_ *testing.T, n int) *http.Request { return req(n, tcccUser, tcccPassword) },
		Forged:  func(_ *testing.T, n int) *http.Request { return req(n, tcccUser, "forged") },
	})
}

// The simulated TCCC pushes with wrong credentials (refused, nothing published) while
// DescribeTelCdr is down: once the API is back, reconciliation publishes the call once.
func TestTCCCBadAuthPushAndAPIDownReconciled(t *testing.T) {
	t.Parallel()
	tb := startTCCC(t, map[string]string{"VOICE_TCCC_RECONCILE_INTERVAL": "1s", "VOICE_TCCC_TRANSCRIBE": "false",
		"RESILIENCE_TCCC_DESCRIBE_TEL_CDR_BREAKER_OPEN_FOR": "500ms"}, nil)
	for k, f := range map[string]sim.Fault{"tccc push": {ErrorRatio: 1, Code: "bad_auth"}, "tccc DescribeTelCdr": {ErrorRatio: 1, Code: "InternalError"}} {
		if err := tb.env.SetFault(k, f); err != nil {
			t.Fatal(err)
		}
	}
	p, err := tb.tccc.Place(tccc.Call{Customer: "13800138006", Says: []string{"en-refund"}})
	if err != nil {
		t.Fatal(err)
	}
	bustest.WaitFor(t, 10*time.Second, "refused CDR push and failed reconciliations", func() bool {
		refused := false
		for _, r := range tb.env.Records(sim.Filter{Vendor: tccc.Vendor, Op: tccc.OpPush}) {
			refused = refused || r.Error != "" && strings.Contains(string(r.Data), `"action":"cdr"`)
		}
		return refused && len(tb.env.Records(sim.Filter{Vendor: tccc.Vendor, Op: tccc.OpDescribeTelCdr})) >= 2
	})
	if n := tb.bus.StoredCount(t, bus.StreamIn, ">"); n != 0 {
		t.Fatalf("%d events from refused pushes", n)
	}
	_ = tb.env.SetFault("tccc DescribeTelCdr", sim.Fault{})
	tb.waitCall(t, voice.TCCCCallID(tcccApp, p.CDR.SessionID))
}

// An outbound call (the agent called the customer): from is the contact centre's number, the
// customer hung up as the callee, and the customer's channel is still the caller leg of the
// transcript (the customer's audio, as the unifier reads it).
func TestTCCCOutboundCall(t *testing.T) {
	t.Parallel()
	tb := startTCCC(t, nil, nil)
	p, err := tb.tccc.Place(tccc.Call{Customer: "13800138007", Outbound: true, Says: []string{"en-order-number", "zh-parcel"}})
	if err != nil {
		t.Fatal(err)
	}
	id := voice.TCCCCallID(tcccApp, p.CDR.SessionID)
	d := tb.waitCall(t, id)
	if d.Direction != "outbound" || d.From.Value != "+864008001234" || d.To.Value != "+8613800138007" || d.HangupSide != "callee" {
		t.Fatalf("%+v", d)
	}
	e := tb.callEvents(t, id)[voice.TypeCallEnded][0]
	if event.PartitionKey(e) != "phone:+8613800138007" {
		t.Fatalf("partition key %q, want the customer's", event.PartitionKey(e))
	}
	segs := tb.waitTranscript(t, id, 2)
	if segs[0].Speaker != "caller" || segs[0].Text != p.Said[0] || segs[1].Speaker != "callee" {
		t.Fatalf("%+v", segs)
	}
}

// The connector stops while a call's recording and transcript are pending (the vendors down):
// the next start resumes the work from the voice_tccc bucket, and the transcript arrives once.
func TestTCCCRestartResumesWork(t *testing.T) {
	t.Parallel()
	tb := startTCCC(t, map[string]string{"RESILIENCE_TCCC_RECORDING_BREAKER_OPEN_FOR": "500ms"}, nil)
	_ = tb.env.SetFault("tccc recording", sim.Fault{ErrorRatio: 1, Code: "503"})
	p, err := tb.tccc.Place(tccc.Call{Customer: "13800138008", Says: []string{"zh-order-number", "en-refund"}})
	if err != nil {
		t.Fatal(err)
	}
	id := voice.TCCCCallID(tcccApp, p.CDR.SessionID)
	if d := tb.waitCall(t, id); d.Recording != nil {
		t.Fatalf("%+v", d)
	}
	tb.stop(t)
	_ = tb.env.SetFault("tccc recording", sim.Fault{})
	tb.run(t)
	segs := tb.waitTranscript(t, id, 2)
	if segs[0].Text != p.Said[0] || segs[1].Text != p.Said[1] {
		t.Fatalf("%+v, said %q", segs, p.Said)
	}
	time.Sleep(time.Second)
	if n := len(tb.transcript(t, id)); n != 2 {
		t.Fatalf("%d segments after the restart, want 2", n)
	}
	tb.waitCall(t, id) // and still one started, one ended
}

type transcribedData struct {
	CallID     string `json:"call_id"`
	Provider   string `json:"provider"`
	Transcript string `json:"transcript"`
	Files      []struct {
		Name, Kind, Outcome string
		Attempts            int
	} `json:"files"`
}

// waitTranscribed waits for the call's after-call transcription outcome and returns it, checking
// there is one and that it follows the call's segments on the stream.
func (tb *tcccBundle) waitTranscribed(t *testing.T, callID string) transcribedData {
	t.Helper()
	var got []event.Event
	bustest.WaitFor(t, 30*time.Second, "the transcription outcome of "+callID, func() bool {
		got = nil
		for _, e := range tb.bus.Events(t, bus.StreamIn, voice.SubjectTranscription+".>") {
			if e.Subject() == callID {
				got = append(got, e)
			}
		}
		return len(got) > 0
	})
	if len(got) != 1 || got[0].Type() != voice.TypeTranscribed {
		t.Fatalf("%d transcription outcomes (%v)", len(got), got)
	}
	var d transcribedData
	if err := event.DecodeData(got[0], &d); err != nil {
		t.Fatal(err)
	}
	last := -1
	for i, e := range tb.bus.Events(t, bus.StreamIn, "omni.in.voice.>") {
		if e.Subject() == callID && e.Type() == voice.TypeSegment {
			last = i
		} else if e.ID() == got[0].ID() && i < last {
			t.Errorf("the outcome came before a segment of the call")
		}
	}
	return d
}

// The after-call transcription's end is said, as the SIP path's ended event says it: complete
// when the sandbox's NLS transcribed the recording; none when its SubmitTask is down past
// VOICE_TCCC_MAX_ATTEMPTS — the call's ended event is published as ever, no segment follows,
// and the outcome says the file was given up, not silence.
func TestTCCCTranscriptionOutcome(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, want, outcome string
		fault               bool
	}{
		{"transcribed", "complete", "transcribed", false},
		{"vendor down past the retries", "none", "given_up", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tb := startTCCC(t, map[string]string{"VOICE_TCCC_MAX_ATTEMPTS": "2"}, nil)
			if tc.fault {
				if err := tb.env.SetFault("nls SubmitTask", sim.Fault{ErrorRatio: 1, Code: "503"}); err != nil {
					t.Fatal(err)
				}
			}
			p, err := tb.tccc.Place(tccc.Call{Customer: "13800138007", Says: []string{"en-manager"}})
			if err != nil {
				t.Fatal(err)
			}
			id := voice.TCCCCallID(tcccApp, p.CDR.SessionID)
			if d := tb.waitCall(t, id); d.Reason != "completed" || d.Recording == nil {
				t.Fatalf("ended %+v", d)
			}
			d := tb.waitTranscribed(t, id)
			if d.Transcript != tc.want || d.Provider != "tccc" || len(d.Files) != 1 || d.Files[0].Name != "call" ||
				d.Files[0].Kind != "call" || d.Files[0].Outcome != tc.outcome {
				t.Fatalf("transcription outcome %+v, want transcript %s, the call's file %s", d, tc.want, tc.outcome)
			}
			segs := tb.transcript(t, id)
			if tc.fault && (len(segs) != 0 || d.Files[0].Attempts != 2) {
				t.Errorf("given up after %d attempts with %d segments, want 2 attempts and none", d.Files[0].Attempts, len(segs))
			}
			if !tc.fault && (len(segs) != 1 || segs[0].Text != p.Said[0]) {
				t.Errorf("segments %+v, said %q", segs, p.Said)
			}
			if n := tb.env.Stats()["nls SubmitTask"].Calls; tc.fault && n < 2 {
				t.Errorf("NLS saw %d SubmitTask calls, want the 2 attempts at least", n)
			}
		})
	}
}
