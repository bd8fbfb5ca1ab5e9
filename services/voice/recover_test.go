package voice_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/services/voice"
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
