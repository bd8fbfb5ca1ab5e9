package speech_test

import (
	"encoding/binary"
	"testing"

	"github.com/omnibus-dev/omnibus/services/sandbox/speech"
)

// The committed audio of every catalogue utterance is recognised as that utterance: what the
// demo's simulated callers say is transcribed with the catalogue's text.
func TestAudioIsRecognised(t *testing.T) {
	for _, u := range speech.Catalogue() {
		samples, err := speech.Audio(u.ID)
		if err != nil {
			t.Fatal(err)
		}
		pcm := make([]byte, 2*len(samples))
		for i, s := range samples {
			binary.LittleEndian.PutUint16(pcm[2*i:], uint16(s))
		}
		got := recognise(t, pcm, 3)
		if len(got) != 1 || got[0].Match != u.ID || got[0].Text != u.Text {
			t.Errorf("%s: recognised %+v", u.ID, got)
		}
	}
	if _, err := speech.Audio("nope"); err == nil {
		t.Error("audio of an unknown utterance")
	}
}
