// Package speech is the sandbox's deterministic "speech recogniser": it does not understand
// speech, it recognises the utterances of a fixed catalogue by their loudness envelope. The
// catalogue (catalogue.json, embedded) holds contact-centre sentences in Chinese and English,
// each with its text, the espeak-ng voice that speaks it and its fingerprint: the log energy of
// every 20 ms of the utterance's 8 kHz audio, smoothed and normalised. A Recognizer segments an
// incoming stream by silence (voice-activity detection on the same energy), matches each
// utterance to the catalogue by dynamic time warping of the envelopes — robust to G.711, RTP
// jitter and silence padding, which change neither the envelope's shape nor its length — and
// reports partial results while an utterance goes on, then a final one with the catalogue's text
// (or Unintelligible, with a low confidence, for audio it does not know).
//
// The fingerprints are committed, so the sandbox needs no espeak-ng; `go test -run
// TestCatalogue -update ./services/sandbox/speech` regenerates them where espeak-ng and sox are
// installed.
package speech

import (
	_ "embed"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// Rate is the sample rate the recogniser works at; FrameSamples is one 20 ms analysis frame.
const (
	Rate         = 8000
	FrameSamples = Rate / 50
)

// Tuning of the segmenter and the matcher.
const (
	speechDB     = 38.0 // frames louder than this are speech (16-bit full scale is ~90 dB)
	endSilence   = 35   // frames (700 ms) of silence end an utterance
	minSpeech    = 10   // frames (200 ms) of speech make an utterance; shorter bursts are noise
	maxFrames    = 1500 // frames (30 s): a longer utterance is cut there
	partialEvery = 50   // frames (1 s) of an utterance between partial results
	matchMax     = 0.6  // mean feature distance (in standard deviations) accepted as a match
	maxStretch   = 1.15 // longest/shortest length of a match: the same audio keeps its length
)

// FinalAfter is how much silence ends an utterance: a final result comes that long after the
// utterance's last speech frame (what a latency measurement starts its clock from).
const FinalAfter = endSilence * 20 * time.Millisecond

// Unintelligible is the text of a final result for audio not in the catalogue.
const Unintelligible = "[unintelligible]"

// Utterance is one catalogue entry.
type Utterance struct {
	ID    string `json:"id"`
	Lang  string `json:"lang"`  // zh or en
	Voice string `json:"voice"` // the espeak-ng voice
	Text  string `json:"text"`
	// Amplitude, Pitch and Speed are espeak-ng's -a (0-200, default 100), -p (0-99, default 50)
	// and -s (words per minute, default 175) when the utterance is not said in the voice's
	// ordinary way — an angry caller is louder, higher and faster.
	Amplitude int `json:"amplitude,omitempty"`
	Pitch     int `json:"pitch,omitempty"`
	Speed     int `json:"speed,omitempty"`
	// Print is the fingerprint: per 20 ms frame, the normalised loudness and spectral tilt,
	// interleaved, in hundredths.
	Print []int16 `json:"print"`
}

//go:embed catalogue.json
var catalogueJSON []byte

// Catalogue returns the utterances the recogniser knows.
func Catalogue() []Utterance {
	var c []Utterance
	if err := json.Unmarshal(catalogueJSON, &c); err != nil {
		panic(fmt.Sprintf("speech: catalogue.json: %v", err))
	}
	return c
}

// Find returns the catalogue entry with id.
func Find(id string) (Utterance, bool) {
	for _, u := range Catalogue() {
		if u.ID == id {
			return u, true
		}
	}
	return Utterance{}, false
}

// Feat is what the recogniser measures of one 20 ms frame: its log energy (dB) and its spectral
// tilt (the log energy of its first difference minus DB: high for fricatives, low for vowels).
type Feat struct{ DB, Tilt float64 }

// frameFeat measures one frame of 16-bit little-endian samples.
func frameFeat(pcm []byte) Feat {
	var sum, dsum, prev float64
	n := len(pcm) / 2
	for i := range n {
		v := float64(int16(binary.LittleEndian.Uint16(pcm[2*i:])))
		sum += v * v
		dsum += (v - prev) * (v - prev)
		prev = v
	}
	db := 10 * math.Log10(sum/float64(max(n, 1))+1)
	return Feat{DB: db, Tilt: 10*math.Log10(dsum/float64(max(n, 1))+1) - db}
}

// Envelope returns the features of every frame of 8 kHz PCM (a trailing partial frame is
// ignored).
func Envelope(pcm []byte) []Feat {
	out := make([]Feat, 0, len(pcm)/(2*FrameSamples))
	for i := 0; i+2*FrameSamples <= len(pcm); i += 2 * FrameSamples {
		out = append(out, frameFeat(pcm[i:i+2*FrameSamples]))
	}
	return out
}

// Fingerprint turns an utterance's frames (first to last speech frame) into its print: silent
// frames clamped to the speech threshold (their tilt to 0), each feature smoothed over three
// frames and normalised to zero mean and unit deviation.
func Fingerprint(env []Feat) []Feat {
	db, tilt := make([]float64, len(env)), make([]float64, len(env))
	for i, f := range env {
		db[i] = max(f.DB, speechDB-6)
		if f.DB >= speechDB-6 {
			tilt[i] = f.Tilt
		}
	}
	db, tilt = normalise(smooth(db)), normalise(smooth(tilt))
	out := make([]Feat, len(env))
	for i := range out {
		out[i] = Feat{db[i], tilt[i]}
	}
	return out
}

// renormalise normalises each feature of a part of a print again (a print's prefix is compared
// with an utterance heard so far, normalised on its own).
func renormalise(p []Feat) []Feat {
	db, tilt := make([]float64, len(p)), make([]float64, len(p))
	for i, f := range p {
		db[i], tilt[i] = f.DB, f.Tilt
	}
	db, tilt = normalise(db), normalise(tilt)
	out := make([]Feat, len(p))
	for i := range out {
		out[i] = Feat{db[i], tilt[i]}
	}
	return out
}

func smooth(c []float64) []float64 {
	n := len(c)
	s := make([]float64, n)
	for i := range n {
		a, b := max(i-1, 0), min(i+1, n-1)
		var sum float64
		for j := a; j <= b; j++ {
			sum += c[j]
		}
		s[i] = sum / float64(b-a+1)
	}
	return s
}

func normalise(s []float64) []float64 {
	n := len(s)
	if n == 0 {
		return s
	}
	var mean, dev float64
	for _, v := range s {
		mean += v
	}
	mean /= float64(n)
	for _, v := range s {
		dev += (v - mean) * (v - mean)
	}
	dev = math.Sqrt(dev / float64(n))
	if dev < 1e-6 {
		dev = 1
	}
	for i := range s {
		s[i] = (s[i] - mean) / dev
	}
	return s
}

// Quantize stores a print in hundredths, features interleaved.
func Quantize(p []Feat) []int16 {
	q := func(v float64) int16 { return int16(math.Round(max(-300, min(300, v)) * 100)) }
	out := make([]int16, 0, 2*len(p))
	for _, f := range p {
		out = append(out, q(f.DB), q(f.Tilt))
	}
	return out
}

// Dequantize reads a stored print.
func Dequantize(p []int16) []Feat {
	out := make([]Feat, len(p)/2)
	for i := range out {
		out[i] = Feat{float64(p[2*i]) / 100, float64(p[2*i+1]) / 100}
	}
	return out
}

func (u Utterance) print() []Feat { return Dequantize(u.Print) }

// Distance is the dynamic-time-warping distance of two prints: the mean absolute difference
// (both features) along the best alignment within a band of a tenth of the longer one around
// the diagonal. +Inf when their lengths differ by more than maxStretch.
func Distance(a, b []Feat) float64 {
	n, m := len(a), len(b)
	if n == 0 || m == 0 || float64(max(n, m)) > maxStretch*float64(min(n, m)) {
		return math.Inf(1)
	}
	band := max(n, m)/10 + abs(n-m) + 1
	inf := math.Inf(1)
	prev, cur := make([]float64, m+1), make([]float64, m+1)
	prevL, curL := make([]int, m+1), make([]int, m+1)
	for j := range prev {
		prev[j] = inf
	}
	prev[0] = 0
	for i := 1; i <= n; i++ {
		for j := range cur {
			cur[j], curL[j] = inf, 0
		}
		c := i * m / n
		for j := max(1, c-band); j <= min(m, c+band); j++ {
			d := math.Abs(a[i-1].DB-b[j-1].DB) + math.Abs(a[i-1].Tilt-b[j-1].Tilt)
			best, bl := prev[j-1], prevL[j-1]
			if prev[j] < best {
				best, bl = prev[j], prevL[j]
			}
			if cur[j-1] < best {
				best, bl = cur[j-1], curL[j-1]
			}
			cur[j], curL[j] = best+d, bl+1
		}
		prev, cur = cur, prev
		prevL, curL = curL, prevL
	}
	if math.IsInf(prev[m], 1) {
		return inf
	}
	return prev[m] / float64(prevL[m])
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// Match returns the catalogue entry nearest to print and its distance; ok is false when none is
// within the acceptance threshold.
func Match(print []Feat, cat []Utterance) (u Utterance, dist float64, ok bool) {
	dist = math.Inf(1)
	for _, c := range cat {
		if d := Distance(print, c.print()); d < dist {
			u, dist = c, d
		}
	}
	return u, dist, dist <= matchMax
}

// Confidence maps a match distance to 0..1.
func Confidence(dist float64, ok bool) float64 {
	if !ok {
		return 0.1
	}
	return math.Round((1-dist/3)*1000) / 1000
}
