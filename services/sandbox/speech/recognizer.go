package speech

import (
	"time"
)

// Result is what the recogniser reports about one utterance: partials while it goes on, then a
// final. Segment numbers utterances from 0; Begin and End are offsets into the stream (End is
// Begin for a partial).
type Result struct {
	Segment    int
	Begin, End time.Duration
	Text       string
	Final      bool
	Confidence float64
	// Match is the catalogue id of a final result ("" when unintelligible).
	Match string
}

// Recognizer segments a stream of 8 kHz 16-bit PCM by silence and recognises each utterance.
// It is not safe for concurrent use.
type Recognizer struct {
	cat     []Utterance
	carry   []byte // less than a frame, waiting for the next Write
	frame   int    // index of the next frame
	in      bool   // inside an utterance
	start   int    // its first frame
	env     []Feat
	speech  int // speech frames of the utterance
	silence int // trailing silent frames
	seg     int
}

// NewRecognizer returns a recogniser of the catalogue.
func NewRecognizer(cat []Utterance) *Recognizer { return &Recognizer{cat: cat} }

func at(frame int) time.Duration { return time.Duration(frame) * 20 * time.Millisecond }

// Write feeds audio and returns the results it completes.
func (r *Recognizer) Write(pcm []byte) []Result {
	var out []Result
	buf := append(r.carry, pcm...) //nolint:gocritic // r.carry is replaced below with what is left of buf
	i := 0
	for ; i+2*FrameSamples <= len(buf); i += 2 * FrameSamples {
		out = append(out, r.step(frameFeat(buf[i:i+2*FrameSamples]))...)
	}
	r.carry = append([]byte(nil), buf[i:]...)
	return out
}

// Flush ends the stream: an utterance in progress is recognised.
func (r *Recognizer) Flush() []Result {
	if !r.in {
		return nil
	}
	return r.end()
}

func (r *Recognizer) step(f Feat) []Result {
	defer func() { r.frame++ }()
	loud := f.DB >= speechDB
	if !r.in {
		if !loud {
			return nil
		}
		r.in, r.start, r.env, r.speech, r.silence = true, r.frame, nil, 0, 0
	}
	r.env = append(r.env, f)
	if loud {
		r.speech++
		r.silence = 0
	} else {
		r.silence++
	}
	switch {
	case r.silence >= endSilence || len(r.env) >= maxFrames:
		return r.end()
	case loud && r.speech >= minSpeech && len(r.env)%partialEvery == 0:
		if p, ok := r.partial(); ok {
			return []Result{p}
		}
	}
	return nil
}

// voiced is the utterance's envelope up to its last speech frame.
func (r *Recognizer) voiced() []Feat { return r.env[:len(r.env)-r.silence] }

// partial guesses the text so far from the catalogue entries whose beginning matches.
func (r *Recognizer) partial() (Result, bool) {
	p := Fingerprint(r.voiced())
	best, bestD := Utterance{}, matchMax
	for _, c := range r.cat {
		full := c.print()
		if len(full) < len(p)*3/4 {
			continue
		}
		if d := Distance(p, renormalise(full[:min(len(p), len(full))])); d < bestD {
			best, bestD = c, d
		}
	}
	if best.ID == "" {
		return Result{}, false
	}
	runes := []rune(best.Text)
	n := min(len(runes), len(runes)*len(p)/len(best.print()))
	return Result{Segment: r.seg, Begin: at(r.start), End: at(r.start), Text: string(runes[:n])}, true
}

// end recognises the utterance: a partial with the full text, then the final.
func (r *Recognizer) end() []Result {
	r.in = false
	v := r.voiced()
	if r.speech < minSpeech {
		return nil
	}
	u, d, ok := Match(Fingerprint(v), r.cat)
	text, id := Unintelligible, ""
	if ok {
		text, id = u.Text, u.ID
	}
	begin, end := at(r.start), at(r.start+len(v))
	seg := r.seg
	r.seg++
	return []Result{
		{Segment: seg, Begin: begin, End: begin, Text: text},
		{Segment: seg, Begin: begin, End: end, Text: text, Final: true, Confidence: Confidence(d, ok), Match: id},
	}
}
