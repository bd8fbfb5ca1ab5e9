package speech_test

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/voicetone"
	"github.com/omnibus-dev/omnibus/services/sandbox/speech"
)

// The committed audio measures as its catalogue says: after the calm zh-card-bill opening, the
// angry zh-double-charge-angry (espeak-ng louder, higher, faster) is agitated, while the same
// words in the ordinary voice, or another calm sentence, stay calm.
func TestAudioTone(t *testing.T) {
	t.Parallel()
	cases := []struct {
		then string
		want []string
	}{
		{"zh-double-charge-angry", []string{voicetone.Agitated}},
		{"zh-double-charge", []string{voicetone.Calm}},
		{"zh-parcel", []string{voicetone.Calm}},
	}
	for _, c := range cases {
		tr := voicetone.NewTracker()
		var at time.Duration
		say := func(id string) (start, end time.Duration) {
			s, err := speech.Audio(id)
			if err != nil {
				t.Fatal(err)
			}
			s = append(s, make([]int16, 8000)...) // a second's pause
			b := make([]byte, 2*len(s))
			for i, v := range s {
				binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
			}
			for off := 0; off < len(b); off += 320 {
				tr.Write(at+time.Duration(off/2)*time.Second/voicetone.Rate, b[off:min(len(b), off+320)])
			}
			start, end = at, at+time.Duration(len(s))*time.Second/voicetone.Rate
			at = end
			return start, end - time.Second
		}
		s, e := say("zh-card-bill")
		first, ok := tr.Segment(s, e)
		if !ok || first.Label != voicetone.Calm || first.BaselineMS != 3000 {
			t.Fatalf("opening: %+v", first)
		}
		s, e = say(c.then)
		got, ok := tr.Segment(s, e)
		t.Logf("%s: %s arousal %.2f, delta %+v, pitch %.0f Hz, rate %.1f/s, %.1f dBFS", c.then, got.Label, got.Arousal,
			got.Delta, got.PitchHz, got.Rate, got.EnergyDBFS)
		if !ok || got.Label != c.want[0] {
			t.Errorf("%s after the calm opening: %s (arousal %.2f), want %s", c.then, got.Label, got.Arousal, c.want[0])
		}
	}
}
