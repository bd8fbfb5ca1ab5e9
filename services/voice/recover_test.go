package voice_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	speechsim "github.com/omnibus-dev/omnibus/services/sandbox/speech"
	"github.com/omnibus-dev/omnibus/services/voice"
	"github.com/omnibus-dev/omnibus/services/voice/internal/wav"
)

// TestRestartMidCallKeepsAudio: what the spool holds while a call is up is what a crash
// leaves behind (every packet is written as it arrives, the WAV header is final only at the
// end). A connector started on a copy of it stores the audio received so far, with a valid
// header, and publishes the call's ended event with reason recovered; the spool is emptied.
func TestRestartMidCallKeepsAudio(t *testing.T) {
	t.Parallel()
	tb := start(t, nil, nil)
	_, c := dial(t, tb)
	c.sendAudio(t, time.Second)
	time.Sleep(100 * time.Millisecond)
	crashed := filepath.Join(t.TempDir(), "spool")
	if err := os.CopyFS(crashed, os.DirFS(tb.spool)); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(crashed)
	if len(entries) != 2 {
		t.Fatalf("spool of a call in progress holds %d files, want its meta and its caller leg", len(entries))
	}
	_ = c.sess.Bye(ctxFor(t, 5*time.Second))

	// The restarted connector (on a bus of its own: the first one published this call's ended
	// event under the same id).
	re := start(t, nil, map[string]string{"VOICE_SPOOL_DIR": crashed})
	d := ended(t, re.waitEnded(t, 1, 10*time.Second)[voice.TypeCallEnded][0])
	if d.HangupSide != "system" || d.Reason != "recovered" || d.AnsweredAt == "" || d.Recording == nil {
		t.Fatalf("ended = %+v", d)
	}
	if ms := recordedMS(t, re, d.Recording.Legs[0].URL); ms != 1000 {
		t.Fatalf("recovered %d ms of the 1000 ms received before the crash", ms)
	}
	if left, _ := os.ReadDir(crashed); len(left) != 0 {
		t.Fatalf("spool not emptied after recovery: %d files", len(left))
	}
}

// TestRestartMidCallUnderASR: a call streams to the sandbox's iFlytek RTASR; once a sentence's
// final segment is published and every packet sent is in the spool, the spool is copied — what
// a crash at that moment leaves (segments are published as they come, audio written as it
// arrives). A connector started on that copy, on the same bus, stores the audio received up to
// the crash, whole, and publishes the call's ended event with reason recovered and transcript
// partial; the segments published before the crash stay on the bus, and the first connector's
// own ended event later (same id) is a duplicate the bus drops. The same with both vendors down
// (nothing transcribed before the crash) says transcript none.
func TestRestartMidCallUnderASR(t *testing.T) {
	t.Parallel()
	pcm := utterances(t, "en-order-number")
	for _, tc := range []struct {
		name, want string
		down       bool
	}{
		{"transcribed", "partial", false},
		{"vendors down", "none", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env, vars := asrSandbox(t)
			if tc.down {
				for _, k := range []string{"iflytek rtasr", "nls SpeechTranscriber"} {
					if err := env.SetFault(k, sim.Fault{ErrorRatio: 1, Code: speechsim.FaultDown}); err != nil {
						t.Fatal(err)
					}
				}
			}
			tb := start(t, nil, vars)
			_, c := dial(t, tb)
			c.sendPCM(t, pcm)
			var finals []segment
			if !tc.down {
				bustest.WaitFor(t, 15*time.Second, "the sentence's final segment", func() bool {
					_, finals = tb.segments(t)
					return len(finals) == 1
				})
			}
			sent := int64(len(pcm) / 320 * 320)
			leg := waitSpooled(t, tb, sent)
			crashed := filepath.Join(t.TempDir(), "spool")
			if err := os.CopyFS(crashed, os.DirFS(tb.spool)); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(crashed, filepath.Base(leg))); err != nil {
				t.Fatal(err)
			}

			re := start(t, tb.bus, map[string]string{"VOICE_SPOOL_DIR": crashed})
			d := ended(t, re.waitEnded(t, 1, 15*time.Second)[voice.TypeCallEnded][0])
			if d.Reason != "recovered" || d.HangupSide != "system" || d.AnsweredAt == "" || d.Recording == nil {
				t.Fatalf("ended = %+v", d)
			}
			if d.Transcript != tc.want {
				t.Errorf("recovered call's transcript %q, want %s", d.Transcript, tc.want)
			}
			re.checkRecovered(t, d, sent)
			_, after := re.segments(t)
			if tc.down && len(after) != 0 {
				t.Errorf("segments with both vendors down: %+v", after)
			}
			if !tc.down {
				u, _ := speechsim.Find("en-order-number")
				if len(after) < 1 || after[0].SegmentID != finals[0].SegmentID || after[0].EndMS != finals[0].EndMS || after[0].Text != u.Text {
					t.Errorf("final segments after the restart %+v, want the one published before it (%q)", after, u.Text)
				}
			}
			if left, _ := os.ReadDir(crashed); len(left) != 0 {
				t.Errorf("spool not emptied after recovery: %d files", len(left))
			}
		})
	}
}

// waitSpooled waits until the spool holds one caller leg of at least pcmBytes of audio, and
// returns its path.
func waitSpooled(t *testing.T, tb *testBundle, pcmBytes int64) string {
	t.Helper()
	var leg string
	bustest.WaitFor(t, 10*time.Second, "the audio sent in the spool", func() bool {
		m, _ := filepath.Glob(filepath.Join(tb.spool, "*.caller.wav"))
		if len(m) != 1 {
			return false
		}
		st, err := os.Stat(m[0])
		leg = m[0]
		return err == nil && st.Size() >= wav.HeaderSize+pcmBytes
	})
	return leg
}

// checkRecovered checks a recovered call: its caller leg holds the pcmBytes of audio received
// before the crash, and the bus one started, one answered and one ended event of it.
func (tb *testBundle) checkRecovered(t *testing.T, d endedData, pcmBytes int64) {
	t.Helper()
	if ms := recordedMS(t, tb, d.Recording.Legs[0].URL); ms != pcmBytes/16 {
		t.Errorf("recovered %d ms of the %d ms received before the crash", ms, pcmBytes/16)
	}
	evs := tb.events(t)
	if len(evs[voice.TypeCallStarted]) != 1 || len(evs[voice.TypeCallAnswered]) != 1 || len(evs[voice.TypeCallEnded]) != 1 {
		t.Errorf("call events on the bus: %d started, %d answered, %d ended", len(evs[voice.TypeCallStarted]),
			len(evs[voice.TypeCallAnswered]), len(evs[voice.TypeCallEnded]))
	}
}
