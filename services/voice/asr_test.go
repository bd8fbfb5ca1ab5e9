package voice_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zaf/g711"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/services/sandbox/iflytek"
	"github.com/omnibus-dev/omnibus/services/sandbox/nls"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	speechsim "github.com/omnibus-dev/omnibus/services/sandbox/speech"
	"github.com/omnibus-dev/omnibus/services/voice"
)

// asrSandbox starts the simulated iFlytek and Aliyun NLS on loopback and returns the
// connector's environment pointing at them, iFlytek first and Aliyun as the failover.
func asrSandbox(t *testing.T) (*sim.Env, map[string]string) {
	t.Helper()
	mux := http.NewServeMux()
	env := sim.NewEnv(mux, "http://127.0.0.1:1/hooks", nil, 0, quiet())
	if _, err := iflytek.New(env, iflytek.Config{AppID: "5f0a1b2c", APIKey: "sandbox-rtasr-api-key"}); err != nil {
		t.Fatal(err)
	}
	if _, err := nls.New(env, nls.Config{AccessKeyID: "LTAI5tSandboxNls", AccessKeySecret: "sandbox-nls-secret", AppKey: "sandboxNlsAppKey"}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	ws := "ws" + strings.TrimPrefix(srv.URL, "http")
	return env, map[string]string{"VOICE_ASR": "iflytek",
		"VOICE_IFLYTEK_URL": ws + "/sandbox/iflytek/v1/ws", "VOICE_IFLYTEK_APP_ID": "5f0a1b2c", "VOICE_IFLYTEK_API_KEY": "sandbox-rtasr-api-key",
		"VOICE_ALIYUN_TOKEN_URL": srv.URL + "/sandbox/nls/meta/", "VOICE_ALIYUN_NLS_URL": ws + "/sandbox/nls/ws/v1",
		"VOICE_ALIYUN_ACCESS_KEY_ID": "LTAI5tSandboxNls", "VOICE_ALIYUN_ACCESS_KEY_SECRET": "sandbox-nls-secret",
		"VOICE_ALIYUN_APPKEY": "sandboxNlsAppKey", "VOICE_ASR_FINISH_TIMEOUT": "3s"}
}

type segment struct {
	CallID     string   `json:"call_id"`
	SegmentID  int      `json:"segment_id"`
	Speaker    string   `json:"speaker"`
	StartMS    int64    `json:"start_ms"`
	EndMS      int64    `json:"end_ms"`
	Text       string   `json:"text"`
	Final      bool     `json:"final"`
	Vendor     string   `json:"vendor"`
	Confidence *float64 `json:"confidence"`
	Tone       *struct {
		EnergyDBFS float64 `json:"energy_dbfs"`
		PitchHz    float64 `json:"pitch_hz"`
		Rate       float64 `json:"rate"`
		Delta      struct {
			EnergyDB float64 `json:"energy_db"`
			PitchST  float64 `json:"pitch_st"`
			RatePct  float64 `json:"rate_pct"`
		} `json:"delta"`
		Arousal    float64 `json:"arousal"`
		Label      string  `json:"label"`
		BaselineMS int     `json:"baseline_ms"`
	} `json:"tone"`
}

// segments returns the transcript events stored, in order, and the finals among them.
func (tb *testBundle) segments(t *testing.T) (all, finals []segment) {
	t.Helper()
	for _, e := range tb.bus.Events(t, bus.StreamIn, voice.SubjectTranscript+".>") {
		var s segment
		if err := event.DecodeData(e, &s); err != nil {
			t.Fatal(err)
		}
		all = append(all, s)
		if s.Final {
			finals = append(finals, s)
		}
	}
	return all, finals
}

// checkTranscript checks that the finals are the catalogue's texts of ids, in order, each
// after a partial of its segment.
func checkTranscript(t *testing.T, all, finals []segment, ids ...string) {
	t.Helper()
	var want, got []string
	for _, id := range ids {
		u, _ := speechsim.Find(id)
		want = append(want, u.Text)
	}
	for _, f := range finals {
		got = append(got, f.Text)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("final transcript %q, want %q (all segments: %+v)", got, want, all)
	}
	for i, f := range finals {
		if i > 0 && (f.SegmentID <= finals[i-1].SegmentID || f.StartMS < finals[i-1].EndMS) {
			t.Errorf("segments out of order: %+v", finals)
		}
		// iFlytek RTASR gives no confidence; Aliyun does.
		if f.Speaker != "caller" || f.EndMS <= f.StartMS || (f.Confidence == nil) != (f.Vendor == "iflytek") ||
			(f.Confidence != nil && *f.Confidence < 0.5) {
			t.Errorf("final %+v", f)
		}
		partial := false
		for _, s := range all {
			partial = partial || (!s.Final && s.SegmentID == f.SegmentID)
		}
		if !partial {
			t.Errorf("no partial before final %d", f.SegmentID)
		}
	}
	// No partial is left dangling, across a failover too.
	for _, s := range all {
		if !slices.ContainsFunc(finals, func(f segment) bool { return f.SegmentID == s.SegmentID }) {
			t.Errorf("partial %+v has no final", s)
		}
	}
}

// utterances synthesises catalogue utterances, each followed by 1.5 s of silence, skipping
// the test without espeak-ng.
func utterances(t *testing.T, ids ...string) []byte {
	t.Helper()
	pcm := make([]byte, 8000) // 0.5 s of silence first
	for _, id := range ids {
		u, _ := speechsim.Find(id)
		b, err := speechsim.Synthesize(context.Background(), u.Voice, u.Text, "")
		if errors.Is(err, speechsim.ErrNoTTS) {
			need(t, "espeak-ng", "sox")
		}
		if err != nil {
			t.Fatal(err)
		}
		pcm = append(append(pcm, b...), make([]byte, 2*8000*3/2)...)
	}
	return pcm
}

// sendPCM sends 8 kHz PCM as µ-law RTP in 20 ms packets, paced in real time.
func (c *call) sendPCM(t *testing.T, pcm []byte) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for off := 0; off+320 <= len(pcm); off += 320 {
		if _, err := c.rtp.WriteToUDP(rtpPacket(0, c.seq, c.ts, c.seq == 0, g711.EncodeUlaw(pcm[off:off+320])), c.to); err != nil {
			t.Fatal(err)
		}
		c.seq++
		c.ts += 160
		<-tick.C
	}
}

// hangUp sends BYE and returns the call's ended event data.
func (tb *testBundle) hangUp(t *testing.T, c *call) endedData {
	t.Helper()
	if err := c.sess.Bye(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	return ended(t, tb.waitEnded(t, 1, 15*time.Second)[voice.TypeCallEnded][0])
}

// TestTranscriptFailover: iFlytek cuts every stream after 2 s of audio; the transcript resumes
// on Aliyun NLS (the audio since the last final resent), whole and in order, and the recording
// is intact.
func TestTranscriptFailover(t *testing.T) {
	t.Parallel()
	pcm := utterances(t, "en-order-number", "zh-parcel")
	env, vars := asrSandbox(t)
	if err := env.SetFault("iflytek rtasr", sim.Fault{ErrorRatio: 1, Code: "cut:2s"}); err != nil {
		t.Fatal(err)
	}
	tb := start(t, nil, vars)
	_, c := dial(t, tb)
	c.sendPCM(t, pcm)
	d := tb.hangUp(t, c)
	all, finals := tb.segments(t)
	checkTranscript(t, all, finals, "en-order-number", "zh-parcel")
	if finals[len(finals)-1].Vendor != "aliyun" {
		t.Errorf("the last segment came from %s, want aliyun after the cut", finals[len(finals)-1].Vendor)
	}
	if d.Transcript != "complete" {
		t.Errorf("transcript %q, want complete", d.Transcript)
	}
	if s := answeredTranscript(t, tb); s != "live" {
		t.Errorf("answered event's transcript %q, want live", s)
	}
	if ms := recordedMS(t, tb, d.Recording.Legs[0].URL); ms < int64(len(pcm)/16)-200 {
		t.Errorf("recorded %d ms of %d ms sent", ms, len(pcm)/16)
	}
	if n := len(env.Records(sim.Filter{Vendor: "iflytek"})); n < 1 {
		t.Errorf("iflytek saw %d streams", n)
	}
}

// TestTranscriptBothDown: both vendors refuse every handshake; the call is recorded whole and
// its ended event says there is no transcript.
func TestTranscriptBothDown(t *testing.T) {
	t.Parallel()
	env, vars := asrSandbox(t)
	tb := start(t, nil, vars) // the start check's handshake succeeds; then the vendors go down
	for _, k := range []string{"iflytek rtasr", "nls SpeechTranscriber"} {
		if err := env.SetFault(k, sim.Fault{ErrorRatio: 1, Code: speechsim.FaultDown}); err != nil {
			t.Fatal(err)
		}
	}
	_, c := dial(t, tb)
	c.sendAudio(t, 2*time.Second)
	d := tb.hangUp(t, c)
	if d.Transcript != "none" {
		t.Errorf("transcript %q, want none", d.Transcript)
	}
	if ms := recordedMS(t, tb, d.Recording.Legs[0].URL); ms < 1800 {
		t.Errorf("recorded %d ms of 2 s", ms)
	}
	if all, _ := tb.segments(t); len(all) != 0 {
		t.Errorf("segments published: %+v", all)
	}
}

// TestTranscriptHangupMidHandshake: the caller hangs up while the vendor is still shaking hands
// (10 s); the call ends at once, recorded, with no transcript.
func TestTranscriptHangupMidHandshake(t *testing.T) {
	t.Parallel()
	env, vars := asrSandbox(t)
	vars["VOICE_ASR_FAILOVER"] = "false"
	tb := start(t, nil, vars) // the start check's handshake is quick; then the vendor slows down
	if err := env.SetFault("iflytek rtasr", sim.Fault{Latency: 10 * time.Second}); err != nil {
		t.Fatal(err)
	}
	_, c := dial(t, tb)
	c.sendAudio(t, time.Second)
	begin := time.Now()
	d := tb.hangUp(t, c)
	if took := time.Since(begin); took > 8*time.Second {
		t.Errorf("the ended event took %s", took)
	}
	if d.Transcript != "none" || d.Recording == nil {
		t.Errorf("transcript %q, recording %+v", d.Transcript, d.Recording)
	}
}

// TestTranscriptBreaker: with iFlytek down, its breaker opens after two failed handshakes and
// the next calls go straight to Aliyun NLS, without trying iFlytek.
func TestTranscriptBreaker(t *testing.T) {
	t.Parallel()
	env, vars := asrSandbox(t)
	vars["RESILIENCE_IFLYTEK_ASR_CONNECT_BREAKER_MIN_CALLS"] = "2"
	tb := start(t, nil, vars)
	checked := env.Stats()["iflytek rtasr"].Calls // the start check's handshake, on a route of its own
	if err := env.SetFault("iflytek rtasr", sim.Fault{ErrorRatio: 1, Code: speechsim.FaultDown}); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		_, c := dial(t, tb)
		c.sendAudio(t, 600*time.Millisecond)
		if err := c.sess.Bye(ctxFor(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		got := tb.waitEnded(t, i+1, 15*time.Second)[voice.TypeCallEnded]
		for _, e := range got {
			if d := ended(t, e); d.Transcript != "complete" {
				t.Errorf("call %s: transcript %q, want complete (from aliyun)", d.CallID, d.Transcript)
			}
		}
	}
	if n := env.Stats()["iflytek rtasr"].Calls - checked; n != 2 {
		t.Errorf("iflytek was tried %d times over 4 calls, want 2 before its breaker opened", n)
	}
	if n := len(env.Records(sim.Filter{Vendor: "nls", Op: "SpeechTranscriber"})); n != 4 {
		t.Errorf("aliyun transcribed %d of 4 calls", n)
	}
}

// TestTranscriptShutdown: stopping the connector mid-sentence hangs up, lets the vendor deliver
// the sentence and closes its stream before the connector returns.
func TestTranscriptShutdown(t *testing.T) {
	t.Parallel()
	pcm := utterances(t, "en-manager")
	env, vars := asrSandbox(t)
	tb := start(t, nil, vars)
	tr, c := dial(t, tb)
	c.sendPCM(t, pcm[:len(pcm)-2*8000]) // the sentence, not all the silence after it
	tb.stop()
	tr.waitBye(t, 5*time.Second, "no BYE at shutdown")
	d := ended(t, tb.waitEnded(t, 1, 5*time.Second)[voice.TypeCallEnded][0])
	if d.Reason != "shutdown" || d.Transcript != "complete" {
		t.Fatalf("ended %+v", d)
	}
	all, finals := tb.segments(t)
	checkTranscript(t, all, finals, "en-manager")
	var recs []sim.Record // the call's streams (the start check's carried no audio)
	for _, r := range env.Records(sim.Filter{Vendor: "iflytek"}) {
		if !strings.Contains(string(r.Data), `"bytes":0,`) {
			recs = append(recs, r)
		}
	}
	if len(recs) != 1 || !strings.Contains(string(recs[0].Data), `"end":"end"`) {
		t.Errorf("the vendor's stream did not end with the end marker: %+v", recs)
	}
}

// answeredTranscript returns the transcript state the call's answered event said.
func answeredTranscript(t *testing.T, tb *testBundle) string {
	t.Helper()
	evs := tb.events(t)[voice.TypeCallAnswered]
	if len(evs) != 1 {
		t.Fatalf("%d answered events, want 1", len(evs))
	}
	var d struct {
		Transcript string `json:"transcript"`
	}
	if err := event.DecodeData(evs[0], &d); err != nil {
		t.Fatal(err)
	}
	return d.Transcript
}
