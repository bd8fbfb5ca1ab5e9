package voicetone_test

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/voicetone"
)

// voice synthesises d of a voice-like signal: a fundamental f0 with two harmonics, its peak at
// level dBFS, its loudness modulated at syll Hz by 12 dB (syllables; 0: steady), starting at
// sample phase n0.
func voice(d time.Duration, f0, level, syll float64) []int16 {
	n := int(d.Seconds() * voicetone.Rate)
	out := make([]int16, n)
	amp := 32767 * math.Pow(10, level/20) / 1.75
	for i := range out {
		t := float64(i) / voicetone.Rate
		s := math.Sin(2*math.Pi*f0*t) + 0.5*math.Sin(2*math.Pi*2*f0*t) + 0.25*math.Sin(2*math.Pi*3*f0*t)
		g := 1.0
		if syll > 0 {
			// 0 dB at the syllable's peak, -12 dB between syllables.
			g = math.Pow(10, -12*(0.5-0.5*math.Cos(2*math.Pi*syll*t))/20)
		}
		out[i] = int16(amp * g * s)
	}
	return out
}

func pcm(s []int16) []byte {
	b := make([]byte, 2*len(s))
	for i, v := range s {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
	}
	return b
}

func frames(s []int16) []voicetone.Frame {
	var a voicetone.Analyzer
	var out []voicetone.Frame
	for i := 0; i+voicetone.FrameSamples <= len(s); i += voicetone.FrameSamples {
		out = append(out, a.Samples(s[i:i+voicetone.FrameSamples]))
	}
	return out
}

// A tone of known fundamental and level is measured at that pitch (within 2 %) and level
// (within 0.5 dB) on every frame after the first; silence and noise are not voiced.
func TestAnalyzerPitchAndLevel(t *testing.T) {
	t.Parallel()
	for _, f0 := range []float64{80, 110, 150, 220, 300, 380} {
		for _, level := range []float64{-6, -20, -35} {
			fr := frames(voice(500*time.Millisecond, f0, level, 0))
			// A full-scale sine is -3 dBFS; this signal's RMS relative to its peak:
			want := 20 * math.Log10(math.Sqrt((1+0.25+0.0625)/2)/1.75*math.Pow(10, level/20))
			for i, f := range fr[1:] {
				if math.Abs(float64(f.F0)-f0) > 0.02*f0 {
					t.Fatalf("f0 %v level %v frame %d: F0 %v", f0, level, i+1, f.F0)
				}
				// A 20 ms frame holds a fraction of a low voice's period: its level varies a little.
				if math.Abs(f.DBFS()-want) > 1.5 {
					t.Fatalf("f0 %v level %v frame %d: %.2f dBFS, want %.2f", f0, level, i+1, f.DBFS(), want)
				}
			}
			if got := voicetone.Measure(fr).EnergyDBFS; math.Abs(got-want) > 0.2 {
				t.Errorf("f0 %v level %v: %.2f dBFS over the whole, want %.2f", f0, level, got, want)
			}
		}
	}
	var a voicetone.Analyzer
	if f := a.Samples(make([]int16, voicetone.FrameSamples)); f.Power != 0 || f.F0 != 0 || f.DBFS() != -120 || f.Active() {
		t.Errorf("silence: %+v %v", f, f.DBFS())
	}
	r := rand.New(rand.NewPCG(1, 2))
	noise := make([]int16, 50*voicetone.FrameSamples)
	for i := range noise {
		noise[i] = int16(r.NormFloat64() * 3000)
	}
	voiced := 0
	for _, f := range frames(noise) {
		if f.Voiced() {
			voiced++
		}
	}
	if voiced > 5 {
		t.Errorf("white noise: %d of 50 frames voiced", voiced)
	}
}

// A steady sine sweep is tracked as it rises.
func TestAnalyzerSweep(t *testing.T) {
	t.Parallel()
	n := 2 * voicetone.Rate
	s := make([]int16, n)
	var phase float64
	for i := range s {
		f := 100 + 200*float64(i)/float64(n) // 100 → 300 Hz over 2 s
		phase += 2 * math.Pi * f / voicetone.Rate
		s[i] = int16(10000 * math.Sin(phase))
	}
	for i, f := range frames(s)[1:] {
		mid := float64((i+1)*voicetone.FrameSamples) + voicetone.FrameSamples/2
		want := 100 + 200*mid/float64(n)
		if math.Abs(float64(f.F0)-want) > 0.04*want {
			t.Fatalf("frame %d: F0 %v, want about %v", i+1, f.F0, want)
		}
	}
}

// Measure: level, median pitch and syllable rate of modulated voice.
func TestMeasure(t *testing.T) {
	t.Parallel()
	for _, syll := range []float64{3, 4, 5.5, 7} {
		f := voicetone.Measure(frames(voice(4*time.Second, 180, -10, syll)))
		if f.ActiveMS < 3900 || f.VoicedMS < 3500 {
			t.Errorf("%v Hz syllables: %+v", syll, f)
		}
		if math.Abs(f.PitchHz-180) > 3 {
			t.Errorf("%v Hz syllables: pitch %v", syll, f.PitchHz)
		}
		if math.Abs(f.Rate-syll) > 0.6 {
			t.Errorf("%v Hz syllables: rate %v", syll, f.Rate)
		}
	}
	if f := voicetone.Measure(frames(make([]int16, 8000))); f.Speech() || f.Rate != 0 || f.PitchHz != 0 {
		t.Errorf("silence: %+v", f)
	}
	if f := voicetone.Measure(nil); f.Speech() {
		t.Errorf("nothing: %+v", f)
	}
}

// Compare: the same voice is calm; louder, higher and faster is agitated; each alone is at most
// raised; quieter, lower and slower is calm.
func TestCompare(t *testing.T) {
	t.Parallel()
	base := voicetone.Measure(frames(voice(3*time.Second, 160, -20, 4)))
	st := func(n float64) float64 { return 160 * math.Pow(2, n/12) }
	cases := []struct {
		name          string
		f0, level, sy float64
		want          []string
	}{
		{"same", 160, -20, 4, []string{voicetone.Calm}},
		{"louder higher faster", st(6), -11, 6, []string{voicetone.Agitated}},
		{"louder", 160, -11, 4, []string{voicetone.Raised}},
		{"higher", st(6), -20, 4, []string{voicetone.Calm, voicetone.Raised}},
		{"louder and higher", st(4), -13, 4, []string{voicetone.Raised, voicetone.Agitated}},
		{"quieter lower slower", st(-4), -30, 3, []string{voicetone.Calm}},
	}
	for _, c := range cases {
		seg := voicetone.Measure(frames(voice(3*time.Second, c.f0, c.level, c.sy)))
		got := voicetone.Compare(seg, base)
		ok := false
		for _, w := range c.want {
			ok = ok || got.Label == w
		}
		if !ok || got.Arousal < 0 || got.Arousal > 1 || got.Label != voicetone.LabelOf(got.Arousal) {
			t.Errorf("%s: %s (arousal %.2f, delta %+v), want %v", c.name, got.Label, got.Arousal, got.Delta, c.want)
		}
	}
	if got := voicetone.Compare(base, voicetone.Features{}); got.Label != voicetone.Calm || got.Arousal != 0 {
		t.Errorf("no baseline: %+v", got)
	}
}

// Tracker: a calm opening then a raised voice, written in uneven chunks with a gap; the baseline
// settles on the opening, the second segment is agitated.
func TestTracker(t *testing.T) {
	t.Parallel()
	calm := voice(3500*time.Millisecond, 150, -22, 4)
	angry := voice(3*time.Second, 150*math.Pow(2, 5.0/12), -12, 6)
	leg := append(append(append([]int16(nil), calm...), make([]int16, 4000)...), angry...)
	b := pcm(leg)
	tr := voicetone.NewTracker()
	r := rand.New(rand.NewPCG(3, 4))
	off := 0
	for off < len(b) {
		n := min(len(b)-off, 2*(1+r.IntN(400)))
		if off > 2*8000 && off < 2*9000 {
			n = 2 * 500 // a packet lost: 62.5 ms that never arrive
			off += n
			continue
		}
		tr.Write(time.Duration(off/2)*time.Second/voicetone.Rate, b[off:off+n])
		off += n
	}
	if got, want := tr.Measured(), time.Duration(len(leg)/voicetone.FrameSamples)*20*time.Millisecond; got != want {
		t.Errorf("measured %v, want %v", got, want)
	}
	first, ok := tr.Segment(0, 3500*time.Millisecond)
	if !ok || first.Label != voicetone.Calm || first.BaselineMS != 3000 {
		t.Errorf("opening: %+v", first)
	}
	if _, settled := tr.Baseline(); !settled {
		t.Error("baseline not settled after 3 s of speech")
	}
	second, ok := tr.Segment(4000*time.Millisecond, 7000*time.Millisecond)
	if !ok || second.Label != voicetone.Agitated || second.Delta.EnergyDB < 8 || second.Delta.PitchST < 4 {
		t.Errorf("raised voice: %+v", second)
	}
	if _, ok := tr.Segment(3550*time.Millisecond, 3950*time.Millisecond); ok {
		t.Error("tone of the pause")
	}
	if _, ok := tr.Segment(8*time.Second, 9*time.Second); ok {
		t.Error("tone of audio not written yet")
	}
}

// A short first segment does not settle the baseline: the next segment is compared with all the
// speech before its end.
func TestTrackerShortOpening(t *testing.T) {
	t.Parallel()
	tr := voicetone.NewTracker()
	tr.Write(0, pcm(voice(600*time.Millisecond, 150, -20, 4)))
	if _, ok := tr.Segment(0, 600*time.Millisecond); !ok {
		t.Fatal("no tone")
	}
	if _, settled := tr.Baseline(); settled {
		t.Error("baseline settled on 0.6 s")
	}
	tr.Write(time.Second, pcm(voice(time.Second, 150, -20, 4)))
	got, _ := tr.Segment(time.Second, 2*time.Second)
	if b, settled := tr.Baseline(); !settled || b.ActiveMS != 1600 || got.Label != voicetone.Calm {
		t.Errorf("baseline %+v settled %v, tone %+v", b, settled, got)
	}
}

// FuzzTracker: any PCM at any offsets, in any chunks, measures without panicking, and every tone
// is in range.
func FuzzTracker(f *testing.F) {
	f.Add(pcm(voice(300*time.Millisecond, 200, -10, 4)), uint16(0), uint16(100), uint16(1000))
	f.Add([]byte{0xff, 0x7f, 0x00, 0x80, 0x01}, uint16(7), uint16(3), uint16(0))
	f.Add(make([]byte, 1000), uint16(65535), uint16(1), uint16(65535))
	f.Fuzz(func(t *testing.T, b []byte, start, chunk, jump uint16) {
		tr := voicetone.NewTracker()
		off := time.Duration(start) * time.Millisecond
		step := int(chunk)%700 + 1
		for i := 0; i < len(b); i += step {
			part := b[i:min(len(b), i+step)]
			tr.Write(off, part)
			off += time.Duration(len(part)/2)*time.Second/voicetone.Rate + time.Duration(jump%50)*time.Millisecond - 20*time.Millisecond
			off = max(off, 0)
		}
		for _, s := range []time.Duration{0, time.Duration(start) * time.Millisecond} {
			tone, ok := tr.Segment(s, tr.Measured())
			if !ok {
				continue
			}
			if tone.Arousal < 0 || tone.Arousal > 1 || math.IsNaN(tone.Arousal) || tone.Label != voicetone.LabelOf(tone.Arousal) ||
				math.IsNaN(tone.EnergyDBFS) || math.IsNaN(tone.Rate) || tone.PitchHz < 0 {
				t.Fatalf("tone %+v", tone)
			}
		}
	})
}
