package voicetone

import "math"

// Features are the measures of a stretch of speech.
type Features struct {
	// EnergyDBFS is the level of the active frames (the mean of their power, in dBFS).
	EnergyDBFS float64
	// PitchHz is the median F0 of the voiced frames; 0 when none is voiced.
	PitchHz float64
	// Rate is syllable nuclei per second of active speech; 0 when nothing is active.
	Rate float64
	// ActiveMS and VoicedMS are how much of the stretch is speech, and voiced speech.
	ActiveMS, VoicedMS int
}

// Speech reports whether the stretch holds any active frame.
func (f Features) Speech() bool { return f.ActiveMS > 0 }

// Pitch histogram: quarter-semitone bins from minF0 up to maxF0.
const (
	binsPerSemitone = 4
	pitchBins       = 33 * binsPerSemitone // log2(400/60)·12 ≈ 32.8 semitones
)

func pitchBin(f0 float64) int {
	b := int(math.Round(12 * binsPerSemitone * math.Log2(f0/minF0)))
	return max(0, min(pitchBins-1, b))
}

func binPitch(b int) float64 { return minF0 * math.Exp2(float64(b)/(12*binsPerSemitone)) }

// nucleusDB is the rise out of a valley, and the fall after it, that make a syllable nucleus.
const nucleusDB = 3.0

// Measure returns the features of consecutive frames. It does not allocate.
func Measure(frames []Frame) Features {
	var (
		f         Features
		power     float64
		active    int
		voiced    int
		hist      [pitchBins]int32
		nuclei    int
		valley    = math.Inf(1)
		peak      float64
		inNucleus bool
	)
	for i, fr := range frames {
		if fr.Active() {
			active++
			power += float64(fr.Power)
			if fr.Voiced() {
				voiced++
				hist[pitchBin(float64(fr.F0))]++
			}
		}
		// The loudness envelope, smoothed over three frames, floored at the gate.
		db := smoothedDB(frames, i)
		switch {
		case inNucleus && db > peak:
			peak = db
		case inNucleus && peak-db >= nucleusDB:
			nuclei++
			inNucleus, valley = false, db
		case !inNucleus && db < valley:
			valley = db
		case !inNucleus && db-valley >= nucleusDB && fr.Voiced():
			inNucleus, peak = true, db
		}
	}
	if inNucleus {
		nuclei++
	}
	f.ActiveMS, f.VoicedMS = active*FrameDuration, voiced*FrameDuration
	if active == 0 {
		f.EnergyDBFS = silentDB
		return f
	}
	f.EnergyDBFS = dbfs(power / float64(active))
	f.Rate = float64(nuclei) / (float64(f.ActiveMS) / 1000)
	if voiced > 0 {
		half, n := (voiced+1)/2, 0
		for b, c := range hist {
			n += int(c)
			if n >= half {
				f.PitchHz = binPitch(b)
				break
			}
		}
	}
	return f
}

func smoothedDB(frames []Frame, i int) float64 {
	var p float64
	n := 0
	for j := max(0, i-1); j <= min(len(frames)-1, i+1); j++ {
		p += float64(frames[j].Power)
		n++
	}
	return max(gateDBFS, dbfs(p/float64(n)))
}

// Labels of the arousal.
const (
	Calm     = "calm"
	Raised   = "raised"
	Agitated = "agitated"
)

// Label thresholds of the arousal score.
const (
	RaisedFrom   = 0.3
	AgitatedFrom = 0.6
)

// Delta is how a segment differs from the baseline.
type Delta struct {
	EnergyDB float64 // dB louder (negative: quieter)
	PitchST  float64 // semitones higher; 0 when either side has no pitch
	RatePct  float64 // percent faster; 0 when either side has no rate
}

// Tone is a segment's tone against the caller's baseline.
type Tone struct {
	Features
	Delta   Delta
	Arousal float64 // in [0, 1]
	Label   string  // calm, raised or agitated
	// BaselineMS is how much active speech the baseline was measured on.
	BaselineMS int
}

// Weights and ranges of the arousal score (see the package documentation).
var components = [3]struct{ weight, lo, hi float64 }{
	{0.45, 1, 9},   // energy, dB
	{0.35, 0.5, 6}, // pitch, semitones
	{0.20, 5, 40},  // rate, percent
}

// Compare scores seg against the caller's baseline.
func Compare(seg, base Features) Tone {
	t := Tone{Features: seg, BaselineMS: base.ActiveMS}
	if !seg.Speech() || !base.Speech() {
		t.Label = Calm
		return t
	}
	t.Delta.EnergyDB = seg.EnergyDBFS - base.EnergyDBFS
	have := [3]bool{true, seg.PitchHz > 0 && base.PitchHz > 0, seg.Rate > 0 && base.Rate > 0}
	if have[1] {
		t.Delta.PitchST = 12 * math.Log2(seg.PitchHz/base.PitchHz)
	}
	if have[2] {
		t.Delta.RatePct = 100 * (seg.Rate/base.Rate - 1)
	}
	x := [3]float64{t.Delta.EnergyDB, t.Delta.PitchST, t.Delta.RatePct}
	var sum, weights float64
	for i, c := range components {
		if !have[i] {
			continue
		}
		weights += c.weight
		sum += c.weight * ramp(x[i], c.lo, c.hi)
	}
	t.Arousal = max(0, min(1, sum/weights))
	t.Label = LabelOf(t.Arousal)
	return t
}

// LabelOf returns the label of an arousal score.
func LabelOf(arousal float64) string {
	switch {
	case arousal >= AgitatedFrom:
		return Agitated
	case arousal >= RaisedFrom:
		return Raised
	}
	return Calm
}

func ramp(x, lo, hi float64) float64 {
	return max(0, min(1, (x-lo)/(hi-lo)))
}
