package sandbox

import (
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/services/sandbox/speech"
)

// Every named call script says catalogue utterances; the bank-card caller's audio is the calm
// opening, a pause, then the angry sentence.
func TestCallScripts(t *testing.T) {
	t.Parallel()
	for name, c := range CallScripts {
		if c.Name != name || len(c.Utterances) == 0 || c.Pause <= speech.FinalAfter {
			t.Errorf("script %s: %+v", name, c)
		}
		if _, _, err := c.Audio(); err != nil {
			t.Error(err)
		}
	}
	audio, said, err := CallBankCardComplaint.Audio()
	if err != nil {
		t.Fatal(err)
	}
	want := 4000 + int(CallBankCardComplaint.Pause.Seconds()*8000)
	for _, id := range CallBankCardComplaint.Utterances {
		u, _ := speech.Find(id)
		pcm, _ := speech.Audio(id)
		want += len(pcm)
		if !containsText(said, u.Text) {
			t.Errorf("%s not said: %q", id, said)
		}
	}
	if len(audio) != want || time.Duration(len(audio))*time.Second/8000 < 10*time.Second {
		t.Errorf("audio of %d samples, want %d", len(audio), want)
	}
	if _, _, err := (CallScript{Name: "x", Utterances: []string{"nope"}}).Audio(); err == nil {
		t.Error("a script with an unknown utterance has audio")
	}
}

func containsText(said []string, text string) bool {
	for _, s := range said {
		if s == text {
			return true
		}
	}
	return false
}
