package voice

import (
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/voicetone"
	"github.com/omnibus-dev/omnibus/services/voice/internal/media"
)

// hum is d of a voice-like 150 Hz signal at level dBFS, as 16-bit little-endian PCM.
func hum(d time.Duration, level float64) []byte {
	n := int(d.Seconds() * 8000)
	b := make([]byte, 2*n)
	amp := 32767 * math.Pow(10, level/20) / 1.75
	for i := range n {
		t := float64(i) / 8000
		s := math.Sin(2*math.Pi*150*t) + 0.5*math.Sin(2*math.Pi*300*t) + 0.25*math.Sin(2*math.Pi*450*t)
		binary.LittleEndian.PutUint16(b[2*i:], uint16(int16(amp*s*(0.6+0.4*math.Sin(2*math.Pi*4*t)))))
	}
	return b
}

// feed sends pcm to m as 20 ms frames of leg starting at off.
func feed(m *toneMeter, leg media.Leg, off time.Duration, pcm []byte) {
	for i := 0; i+320 <= len(pcm); i += 320 {
		m.Frame(media.Frame{Leg: leg, Offset: off + time.Duration(i/320)*20*time.Millisecond, PCM: pcm[i : i+320]})
	}
}

// The meter answers a segment once its audio is measured — waiting for frames still to come —,
// ignores the other leg and frames after the end, and after the end of the input answers with
// what it measured.
func TestToneMeter(t *testing.T) {
	t.Parallel()
	m := startTone(media.LegCaller, 500)
	defer m.close()
	feed(m, media.LegCallee, 0, hum(3*time.Second, -6)) // not the caller: ignored
	feed(m, media.LegCaller, 0, hum(3*time.Second, -25))
	got := make(chan *toneData, 1)
	go func() { got <- m.segment(3500*time.Millisecond, 5500*time.Millisecond) }()
	feed(m, media.LegCaller, 3*time.Second, make([]byte, 8000)) // half a second's pause
	feed(m, media.LegCaller, 3500*time.Millisecond, hum(2*time.Second, -12))
	raised := <-got
	if raised == nil || raised.Label == voicetone.Calm || raised.Delta.EnergyDB < 10 || raised.BaselineMS != 3000 {
		t.Fatalf("the louder segment: %+v", raised)
	}
	m.endInput()
	feed(m, media.LegCaller, 5500*time.Millisecond, hum(time.Second, -6)) // after the end: ignored
	if d := m.segment(5*time.Second, 8*time.Second); d == nil || d.EnergyDBFS > -10 {
		t.Fatalf("after the end of the input: %+v", d)
	}
	if d := m.segment(3050*time.Millisecond, 3450*time.Millisecond); d != nil {
		t.Fatalf("the pause: %+v", d)
	}
}

// newToneData keeps every figure within the schema's bounds, and the label agrees with the
// rounded arousal.
func TestNewToneData(t *testing.T) {
	t.Parallel()
	d := newToneData(voicetone.Tone{Features: voicetone.Features{EnergyDBFS: math.NaN(), PitchHz: 5000, Rate: -1},
		Delta: voicetone.Delta{EnergyDB: 1e9, PitchST: -1e9, RatePct: math.Inf(1)}, Arousal: 0.5996, Label: voicetone.Raised, BaselineMS: -5})
	want := toneData{EnergyDBFS: -120, PitchHz: 1000, Rate: 0, Delta: toneDelta{EnergyDB: 200, PitchST: -100, RatePct: 100000},
		Arousal: 0.6, Label: voicetone.Agitated, BaselineMS: 0}
	if *d != want {
		t.Fatalf("%+v, want %+v", *d, want)
	}
}
