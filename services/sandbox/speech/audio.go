package speech

import (
	"embed"
	"fmt"

	"github.com/zaf/g711"
)

// The catalogue's utterances as audio, 8 kHz G.711 µ-law (what a phone call carries), generated
// with espeak-ng and sox like the fingerprints: what the sandbox's simulated callers say, so that
// a demo call is transcribed with the catalogue's text without espeak-ng on the machine.
//
//go:embed audio/*.ul
var audioFS embed.FS

// Audio returns utterance id's audio as 8 kHz 16-bit samples.
func Audio(id string) ([]int16, error) {
	ul, err := audioFS.ReadFile("audio/" + id + ".ul")
	if err != nil {
		return nil, fmt.Errorf("speech: no audio for utterance %q", id)
	}
	out := make([]int16, len(ul))
	for i, b := range ul {
		out[i] = g711.DecodeUlawFrame(b)
	}
	return out, nil
}
