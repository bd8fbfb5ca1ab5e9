package voicetone

import (
	"time"
)

// Tracker baseline and memory.
const (
	// BaselineSpeech is how much active speech the baseline is measured on at most.
	BaselineSpeech = 3 * time.Second
	// MinBaselineSpeech is the least active speech a baseline is settled on: until the leg's
	// segments hold that much, each segment is compared with all the speech before its end.
	MinBaselineSpeech = time.Second
	// Keep is how far back a Tracker remembers the frames' measures.
	Keep = 2 * time.Minute
)

const (
	frameBytes     = 2 * FrameSamples
	keepFrames     = int(Keep / (FrameDuration * time.Millisecond))
	baselineFrames = int(BaselineSpeech / (FrameDuration * time.Millisecond))
	minBaseFrames  = int(MinBaselineSpeech / (FrameDuration * time.Millisecond))
)

// Tracker follows one leg of a call: Write its PCM in order as it arrives, ask Segment for the
// tone of a stretch of it. It is not safe for concurrent use.
type Tracker struct {
	an      Analyzer
	frames  []Frame // measures of the leg's frames first, first+1, ...
	first   int
	pend    [frameBytes]byte // the start of the next frame
	npend   int
	base    Features
	baseSet bool
}

// NewTracker returns a tracker for a leg that starts at offset 0.
func NewTracker() *Tracker { return &Tracker{frames: make([]Frame, 0, 512)} }

// next is the leg's byte offset of the next byte expected.
func (t *Tracker) next() int64 { return int64(t.first+len(t.frames))*frameBytes + int64(t.npend) }

// Write adds 8 kHz 16-bit little-endian PCM that starts offset into the leg. Audio before what
// was already written is skipped; a gap after it counts as silence.
func (t *Tracker) Write(offset time.Duration, pcm []byte) {
	at := int64(offset) * Rate / int64(time.Second) * 2
	if gap := at - t.next(); gap > 0 {
		t.silence(gap)
	} else if gap < 0 {
		skip := min(int64(len(pcm)), -gap) &^ 1
		pcm = pcm[skip:]
	}
	if t.npend > 0 {
		n := copy(t.pend[t.npend:], pcm)
		t.npend += n
		pcm = pcm[n:]
		if t.npend < frameBytes {
			return
		}
		t.push(t.an.PCM(t.pend[:]))
		t.npend = 0
	}
	for len(pcm) >= frameBytes {
		t.push(t.an.PCM(pcm[:frameBytes]))
		pcm = pcm[frameBytes:]
	}
	t.npend = copy(t.pend[:], pcm)
}

// silence writes n bytes of silence.
func (t *Tracker) silence(n int64) {
	var zero [frameBytes]byte
	for n > 0 {
		c := min(n, int64(frameBytes-t.npend))
		t.Write(time.Duration(t.next()/2)*time.Second/Rate, zero[:c])
		n -= c
	}
}

func (t *Tracker) push(f Frame) {
	t.frames = append(t.frames, f)
	if len(t.frames) > 2*keepFrames {
		drop := len(t.frames) - keepFrames
		t.first += drop
		t.frames = append(t.frames[:0], t.frames[drop:]...)
	}
}

// Measured returns how far into the leg the frames are measured.
func (t *Tracker) Measured() time.Duration {
	return time.Duration(t.first+len(t.frames)) * FrameDuration * time.Millisecond
}

// Baseline returns the caller's baseline and whether it is settled.
func (t *Tracker) Baseline() (Features, bool) { return t.base, t.baseSet }

// Segment returns the tone of the leg from start to end against the caller's baseline, and
// false when that stretch holds no speech (or is no longer, or not yet, measured). The first
// segments with enough speech settle the baseline (see the package documentation).
func (t *Tracker) Segment(start, end time.Duration) (Tone, bool) {
	ms := FrameDuration * time.Millisecond
	s := max(int(start/ms), t.first) - t.first
	e := min(int((end+ms-1)/ms), t.first+len(t.frames)) - t.first
	if s >= e {
		return Tone{}, false
	}
	seg := Measure(t.frames[s:e])
	if !seg.Speech() {
		return Tone{}, false
	}
	if !t.baseSet {
		// The first BaselineSpeech of active speech up to this segment's end.
		upto, active := 0, 0
		for upto < e && active < baselineFrames {
			if t.frames[upto].Active() {
				active++
			}
			upto++
		}
		t.base = Measure(t.frames[:upto])
		t.baseSet = active >= minBaseFrames
	}
	return Compare(seg, t.base), true
}
