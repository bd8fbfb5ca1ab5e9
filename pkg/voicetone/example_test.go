package voicetone_test

import (
	"fmt"
	"math"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/voicetone"
)

// A caller opens calmly, pauses, then speaks 10 dB louder, five semitones higher and faster: the
// Tracker, fed the leg's PCM as it arrives, scores each segment against the opening.
func ExampleTracker() {
	calm := pcm(voice(3500*time.Millisecond, 140, -24, 4))
	angry := pcm(voice(3*time.Second, 140*math.Pow(2, 5.0/12), -14, 6))
	tr := voicetone.NewTracker()
	tr.Write(0, calm)
	tr.Write(4*time.Second, angry) // the half second between is a pause (silence)

	for _, seg := range []struct {
		name       string
		start, end time.Duration
	}{{"opening", 0, 3500 * time.Millisecond}, {"complaint", 4 * time.Second, 7 * time.Second}} {
		t, _ := tr.Segment(seg.start, seg.end)
		fmt.Printf("%s: %s (%+.0f dB, %+.0f semitones, baseline %d ms)\n", seg.name, t.Label, t.Delta.EnergyDB, t.Delta.PitchST, t.BaselineMS)
	}
	// Output:
	// opening: calm (+0 dB, +0 semitones, baseline 3000 ms)
	// complaint: agitated (+10 dB, +5 semitones, baseline 3000 ms)
}
