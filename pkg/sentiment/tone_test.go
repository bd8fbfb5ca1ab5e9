package sentiment_test

import (
	"math"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/sentiment"
)

func TestToneShift(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		score float64
		tone  sentiment.Tone
		want  float64
	}{
		{"calm voice", -0.5, sentiment.Tone{Arousal: 0.1, Label: "calm"}, 0},
		{"at the threshold", -0.5, sentiment.Tone{Arousal: 0.3, Label: "raised"}, 0},
		{"raised", -0.5, sentiment.Tone{Arousal: 0.55, Label: "raised"}, -0.3},
		{"agitated", -0.37, sentiment.Tone{Arousal: 0.68, Label: "agitated"}, -0.456},
		{"fully agitated", 0, sentiment.Tone{Arousal: 1, Label: "agitated"}, -0.6},
		{"never past -1", -0.8, sentiment.Tone{Arousal: 1, Label: "agitated"}, -0.2},
		{"clearly positive words", 0.5, sentiment.Tone{Arousal: 1, Label: "agitated"}, 0},
		{"mildly positive words", 0.2, sentiment.Tone{Arousal: 0.8, Label: "agitated"}, -0.6},
		{"no tone", -0.5, sentiment.Tone{}, 0},
		{"NaN arousal", -0.5, sentiment.Tone{Arousal: math.NaN()}, 0},
	}
	for _, c := range cases {
		if got := sentiment.ToneShift(c.score, c.tone); math.Abs(got-c.want) > 1e-9 || got > 0 || c.score+got < -1 {
			t.Errorf("%s: shift %v, want %v", c.name, got, c.want)
		}
	}
}

// The words of a double charge said calmly stay above the tracker's alert threshold; said in an
// agitated voice they cross it, within the same episode rules.
func TestToneRaisesAlert(t *testing.T) {
	t.Parallel()
	a := sentiment.Default()
	words := a.Analyze("我的卡被扣了两次钱")
	for _, c := range []struct {
		tone  sentiment.Tone
		alert bool
	}{
		{sentiment.Tone{Arousal: 0.05, Label: "calm"}, false},
		{sentiment.Tone{Arousal: 0.68, Label: "agitated"}, true},
	} {
		tr, err := sentiment.NewTracker(sentiment.TrackerConfig{})
		if err != nil {
			t.Fatal(err)
		}
		score := words.Score + sentiment.ToneShift(words.Score, c.tone)
		label, conf := a.Classify(score)
		got := tr.Observe(sentiment.Result{Score: score}) == sentiment.TurnedNegative
		if got != c.alert || (c.alert && label != sentiment.Negative) || conf < 0.5 || conf > 1 {
			t.Errorf("%s voice: words %.2f, combined %.2f %s (%.2f), alert %v, want %v", c.tone.Label, words.Score, score, label, conf,
				got, c.alert)
		}
	}
}

// Classify labels as Analyze does.
func TestClassify(t *testing.T) {
	t.Parallel()
	a := sentiment.Default()
	for _, text := range []string{"我的银行卡被扣了两次钱，你们到底怎么回事！", "谢谢，太好了", "我想查一下账单", "not bad at all", "terrible service"} {
		r := a.Analyze(text)
		label, conf := a.Classify(r.Score)
		if label != r.Label || (len(r.Cues) > 0 && math.Abs(conf-r.Confidence) > 1e-9) {
			t.Errorf("%q: Classify %s %.3f, Analyze %s %.3f", text, label, conf, r.Label, r.Confidence)
		}
	}
}

// FuzzToneShift: for any score in [-1, 1] and any arousal, the shift is <= 0 and keeps the score
// in range, and Classify gives a label and a confidence in [0.5, 1].
func FuzzToneShift(f *testing.F) {
	f.Add(-0.37, 0.68)
	f.Add(0.3, 1.0)
	f.Add(-1.0, 0.31)
	a := sentiment.Default()
	f.Fuzz(func(t *testing.T, score, arousal float64) {
		if math.IsNaN(score) || score < -1 || score > 1 {
			return
		}
		shift := sentiment.ToneShift(score, sentiment.Tone{Arousal: arousal, Label: "raised"})
		if shift > 0 || score+shift < -1-1e-12 || math.IsNaN(shift) {
			t.Fatalf("score %v arousal %v: shift %v", score, arousal, shift)
		}
		if _, conf := a.Classify(score + shift); conf < 0.5 || conf > 1 || math.IsNaN(conf) {
			t.Fatalf("confidence %v", conf)
		}
	})
}
