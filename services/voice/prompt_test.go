package voice_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/zaf/g711"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/services/sandbox/nls"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	"github.com/omnibus-dev/omnibus/services/voice"
	"github.com/omnibus-dev/omnibus/services/voice/internal/wav"
)

// rtpSink collects the RTP packets the connector sends to a call's RTP socket.
type rtpSink struct {
	got  chan rtp.Packet
	done chan struct{}
}

func listenRTP(t *testing.T, conn *net.UDPConn) *rtpSink {
	t.Helper()
	s := &rtpSink{got: make(chan rtp.Packet, 1024), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		buf := make([]byte, 1500)
		for {
			n, err := conn.Read(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				continue
			}
			var p rtp.Packet
			if p.Unmarshal(append([]byte(nil), buf[:n]...)) == nil {
				s.got <- p
			}
		}
	}()
	return s
}

// promptCall starts the connector with the sandbox's Aliyun NLS (TTS, no ASR), places an
// answered call that sends 200 ms of audio, and listens on its RTP socket.
func promptCall(t *testing.T) (*sim.Env, *testBundle, *call, string, *rtpSink) {
	t.Helper()
	env, venv := asrSandbox(t)
	venv["VOICE_ASR"] = "none"
	venv["VOICE_ALIYUN_TTS_URL"] = strings.TrimSuffix(venv["VOICE_ALIYUN_TOKEN_URL"], "/meta/") + "/stream/v1/tts"
	tb := start(t, nil, venv)
	_, c := dial(t, tb)
	c.sendAudio(t, 200*time.Millisecond)
	return env, tb, c, answeredCallID(t, tb), listenRTP(t, c.rtp)
}

// TestPrompt: a prompt command is synthesised by the sandbox's Aliyun NLS TTS (a deterministic
// tone per text), and the caller receives it as RTP in the call's law, exactly: one packet per
// 20 ms of the synthesised audio, consecutive sequence numbers and timestamps, payloads the
// µ-law encoding of the synthesised samples. The recording's callee leg holds the same audio
// after silence up to the prompt's time in the call.
func TestPrompt(t *testing.T) {
	t.Parallel()
	env, tb, c, id, sink := promptCall(t)

	const text = "您好，请稍候，正在为您转接"
	tone := nls.TTSTone(text, 8000)
	pcm := make([]byte, 2*len(tone))
	for i, v := range tone {
		binary.LittleEndian.PutUint16(pcm[2*i:], uint16(v))
	}
	wantPackets := (len(tone) + 159) / 160
	command(t, tb, voice.TypePrompt, voice.SubjectPrompt, map[string]any{"channel": "voice", "call_id": id, "text": text, "agent_id": "agent-li"})

	var got []rtp.Packet
	deadline := time.After(time.Duration(wantPackets)*20*time.Millisecond + 15*time.Second)
	for len(got) < wantPackets {
		select {
		case p := <-sink.got:
			got = append(got, p)
		case <-deadline:
			t.Fatalf("%d prompt packets of %d reached the caller", len(got), wantPackets)
		}
	}
	var payload []byte
	for i, p := range got {
		if p.PayloadType != 0 || p.SequenceNumber != got[0].SequenceNumber+uint16(i) || p.Timestamp != got[0].Timestamp+uint32(160*i) ||
			p.SSRC != got[0].SSRC || p.Marker != (i == 0) {
			t.Fatalf("packet %d: pt %d seq %d ts %d marker %v (first seq %d ts %d)", i, p.PayloadType, p.SequenceNumber, p.Timestamp, p.Marker,
				got[0].SequenceNumber, got[0].Timestamp)
		}
		payload = append(payload, p.Payload...)
	}
	if want := g711.EncodeUlaw(pcm); !bytes.Equal(payload, want) {
		t.Fatalf("the prompt's payload (%d bytes) is not the µ-law of the synthesised audio (%d samples)", len(payload), len(tone))
	}
	if n := len(env.Records(sim.Filter{Vendor: nls.Vendor, Op: nls.OpTTS})); n != 1 {
		t.Fatalf("%d TTS calls, want 1", n)
	}

	// The caller hangs up; the recording's callee leg ends with exactly what the caller heard.
	if err := c.sess.Bye(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	e := ended(t, tb.waitEnded(t, 1, 10*time.Second)[voice.TypeCallEnded][0])
	_ = c.rtp.Close()
	<-sink.done
	if extra := len(sink.got); extra != 0 {
		t.Fatalf("%d RTP packets beyond the prompt", extra)
	}
	var callee string
	for _, l := range e.Recording.Legs {
		if l.Leg == "callee" {
			callee = l.URL
		}
	}
	if callee == "" {
		t.Fatalf("no callee leg in %+v", e.Recording)
	}
	b, err := os.ReadFile(filepath.Join(tb.records, strings.TrimPrefix(callee, "file://"+tb.records+"/")))
	if err != nil {
		t.Fatal(err)
	}
	data := b[wav.HeaderSize:]
	heard := g711.DecodeUlaw(g711.EncodeUlaw(pcm))
	if len(data) < len(heard) || !bytes.Equal(data[len(data)-len(heard):], heard) {
		t.Fatalf("the callee leg (%d bytes) does not end with the prompt (%d bytes)", len(data), len(heard))
	}
	if lead := data[:len(data)-len(heard)]; len(lead) == 0 || !bytes.Equal(lead, make([]byte, len(lead))) {
		t.Fatalf("the callee leg's %d bytes before the prompt are not silence up to its time in the call", len(lead))
	}
}

// TestPromptVendorDown: when Aliyun TTS is down the prompt is dead-lettered at once with the
// reason (after the route's own retry, audited) and the call goes on: once the vendor is back
// the next prompt plays.
func TestPromptVendorDown(t *testing.T) {
	t.Parallel()
	env, tb, _, id, sink := promptCall(t)
	key := nls.Vendor + " " + nls.OpTTS
	if err := env.SetFault(key, sim.Fault{ErrorRatio: 1, Code: "down"}); err != nil {
		t.Fatal(err)
	}
	command(t, tb, voice.TypePrompt, voice.SubjectPrompt, map[string]any{"channel": "voice", "call_id": id, "text": "请稍候"})
	var dead []event.Event
	bustest.WaitFor(t, 20*time.Second, "the prompt dead-lettered", func() bool {
		dead = tb.bus.Events(t, bus.StreamDLQ, "omni.dlq.voice")
		return len(dead) > 0
	})
	if len(dead) != 1 || dead[0].Type() != voice.TypePrompt {
		t.Fatalf("dead letters %v", dead)
	}
	// One audit record of the call, failed after the route's retry.
	var audit struct {
		Vendor, Op, Outcome string
		Attempts            int
	}
	bustest.WaitFor(t, 10*time.Second, "the TTS call's audit record", func() bool {
		for _, e := range tb.bus.Events(t, bus.StreamAudit, "omni.audit.voice") {
			if err := event.DecodeData(e, &audit); err == nil && audit.Op == "tts" {
				return true
			}
		}
		return false
	})
	if audit.Vendor != "aliyun" || audit.Outcome == "ok" || audit.Attempts != 2 {
		t.Fatalf("audit %+v, want a failed aliyun tts call of 2 attempts", audit)
	}

	if err := env.SetFault(key, sim.Fault{}); err != nil {
		t.Fatal(err)
	}
	const text = "好的"
	command(t, tb, voice.TypePrompt, voice.SubjectPrompt, map[string]any{"channel": "voice", "call_id": id, "text": text})
	want := (len(nls.TTSTone(text, 8000)) + 159) / 160
	for i := range want {
		select {
		case <-sink.got:
		case <-time.After(15 * time.Second):
			t.Fatalf("%d packets of the prompt after the vendor came back, want %d", i, want)
		}
	}
}
