package voice

import (
	"math"
	"sync"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/voicetone"
	"github.com/omnibus-dev/omnibus/services/voice/internal/media"
)

// toneMeter measures the caller's voice tone (pkg/voicetone) while the call is up, beside the
// ASR stream: a media.Sink that copies each frame into a bounded queue (never blocking the
// receive goroutine; a frame the queue cannot take is measured as silence) for its own
// goroutine, which keeps the leg's per-frame measures. A final transcript segment asks for the
// tone of its start..end; the answer waits, briefly, until the meter has measured that far.
type toneMeter struct {
	leg    media.Leg
	frames chan media.Frame
	done   chan struct{}

	mu       sync.Mutex
	tr       *voicetone.Tracker
	closed   bool // no more frames are queued
	finished bool // every queued frame is measured
	progress chan struct{}
}

// toneWait bounds how long a segment waits for its audio to be measured (the meter runs well
// ahead of any ASR vendor; this only matters when the machine is starved).
const toneWait = time.Second

func startTone(leg media.Leg, queue int) *toneMeter {
	m := &toneMeter{leg: leg, frames: make(chan media.Frame, max(queue, 1)), done: make(chan struct{}),
		tr: voicetone.NewTracker(), progress: make(chan struct{})}
	go m.run()
	return m
}

// Frame queues a copy of f; when the queue is full the frame is dropped (measured as a gap).
func (m *toneMeter) Frame(f media.Frame) {
	if f.Leg != m.leg {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	f.PCM = append([]byte(nil), f.PCM...)
	select {
	case m.frames <- f:
	default:
	}
}

func (m *toneMeter) run() {
	defer close(m.done)
	for f := range m.frames {
		m.mu.Lock()
		m.tr.Write(f.Offset, f.PCM)
		close(m.progress)
		m.progress = make(chan struct{})
		m.mu.Unlock()
	}
	m.mu.Lock()
	m.finished = true
	close(m.progress)
	m.progress = make(chan struct{})
	m.mu.Unlock()
}

// endInput says no more frames come (the media stopped): segments stop waiting for audio once
// the queue is measured.
func (m *toneMeter) endInput() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.closed {
		m.closed = true
		close(m.frames)
	}
}

// close ends the input and waits for the goroutine.
func (m *toneMeter) close() {
	m.endInput()
	<-m.done
}

// segment returns the tone of the leg from begin to end, nil when that stretch holds no
// speech.
func (m *toneMeter) segment(begin, end time.Duration) *toneData {
	deadline := time.NewTimer(toneWait)
	defer deadline.Stop()
	timedOut := false
	m.mu.Lock()
	defer m.mu.Unlock()
	for !timedOut && !m.finished && m.tr.Measured()+voicetone.FrameDuration*time.Millisecond < end {
		wait := m.progress
		m.mu.Unlock()
		select {
		case <-wait:
		case <-deadline.C:
			timedOut = true
		}
		m.mu.Lock()
	}
	t, ok := m.tr.Segment(begin, end)
	if !ok {
		return nil
	}
	return newToneData(t)
}

// toneData is the segment event's tone (common.defs.json voiceTone).
type toneData struct {
	EnergyDBFS float64   `json:"energy_dbfs"`
	PitchHz    float64   `json:"pitch_hz"`
	Rate       float64   `json:"rate"`
	Delta      toneDelta `json:"delta"`
	Arousal    float64   `json:"arousal"`
	Label      string    `json:"label"`
	BaselineMS int       `json:"baseline_ms"`
}

type toneDelta struct {
	EnergyDB float64 `json:"energy_db"`
	PitchST  float64 `json:"pitch_st"`
	RatePct  float64 `json:"rate_pct"`
}

// newToneData rounds t's figures (two decimals) into the schema's bounds.
func newToneData(t voicetone.Tone) *toneData {
	return &toneData{
		EnergyDBFS: round2(t.EnergyDBFS, -120, 0),
		PitchHz:    round2(t.PitchHz, 0, 1000),
		Rate:       round2(t.Rate, 0, 100),
		Delta: toneDelta{EnergyDB: round2(t.Delta.EnergyDB, -200, 200), PitchST: round2(t.Delta.PitchST, -100, 100),
			RatePct: round2(t.Delta.RatePct, -100, 100000)},
		Arousal:    round2(t.Arousal, 0, 1),
		Label:      voicetone.LabelOf(round2(t.Arousal, 0, 1)),
		BaselineMS: max(t.BaselineMS, 0),
	}
}

func round2(x, lo, hi float64) float64 {
	if math.IsNaN(x) {
		return lo
	}
	return max(lo, min(hi, math.Round(x*100)/100))
}
