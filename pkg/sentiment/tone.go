package sentiment

// Tone is how a caller sounded while saying a message — a call's transcript segment —, as the
// voice connector measured it (pkg/voicetone): Arousal in [0, 1] against the caller's own first
// seconds of speech, and its label (calm, raised, agitated).
type Tone struct {
	Arousal float64 `json:"arousal"`
	Label   string  `json:"label"`
}

// How a voice moves a score (see [ToneShift]).
const (
	// ToneWeight is the most a voice can take off a score.
	ToneWeight = 0.6
	// ToneFrom is the arousal below which a voice shifts nothing: a calm caller's words speak
	// for themselves (pkg/voicetone labels arousal below 0.3 calm).
	ToneFrom = 0.3
	// ToneFull is the arousal from which the whole ToneWeight applies (well into agitated).
	ToneFull = 0.8
	// TonePositive is the score from which words are taken as clearly positive and the voice
	// shifts nothing: a loud, fast, high voice is also how a delighted caller sounds.
	TonePositive = 0.3
)

// ToneShift returns what a caller's voice adds to the score of their words: a raised or agitated
// voice pushes it negative, by ToneWeight × ramp(arousal, ToneFrom, ToneFull) — linear from 0 at
// arousal 0.3 to -0.6 at 0.8 and above —, never past -1, and not at all when the words score
// TonePositive or more. An agitated "my card was charged twice" is angrier than the same words
// said calmly; a calm voice takes nothing away from angry words. The shift is <= 0.
func ToneShift(score float64, t Tone) float64 {
	if score >= TonePositive || !(t.Arousal > ToneFrom) {
		return 0
	}
	shift := -ToneWeight * min(1, (t.Arousal-ToneFrom)/(ToneFull-ToneFrom))
	return max(shift, -1-score)
}

// Classify labels a score with the analyser's thresholds and gives the confidence as [Result]
// defines it (how far inside its label's band the score lies) — for a score combined from
// several signals, such as words and voice.
func (a *Analyzer) Classify(score float64) (Label, float64) {
	switch {
	case score <= a.neg:
		return Negative, 0.5 + 0.5*(a.neg-score)/(1+a.neg)
	case score >= a.pos:
		return Positive, 0.5 + 0.5*(score-a.pos)/(1-a.pos)
	case score < 0:
		return Neutral, 0.5 + 0.5*(1-score/a.neg)
	}
	return Neutral, 0.5 + 0.5*(1-score/a.pos)
}
