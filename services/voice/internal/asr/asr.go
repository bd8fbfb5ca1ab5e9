// Package asr transcribes a call's legs live with a real-time speech recognition vendor: a Stream
// per leg is a media.Sink that queues the leg's frames (bounded, counting what it drops, never
// blocking the receive goroutine), feeds them to a vendor Session, and hands each partial and
// final Result to a callback. When the vendor fails — its connect or handshake fails, or its
// stream breaks mid-call — the Stream fails over to the next vendor and resends the audio since
// the last final result, so the transcript resumes; Close reports whether the transcript is
// complete, partial or missing.
//
// Vendors (Vendor) speak their own wire: iFlytek RTASR (IFlytek) and Aliyun NLS
// SpeechTranscriber (Aliyun). This is a seam of the voice connector, not a promised API.
package asr

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/omnibus-dev/omnibus/services/voice/internal/media"
)

// Result is one recognition result of a leg.
type Result struct {
	// Segment is the vendor's sequence number of the sentence (iFlytek seg_id, Aliyun index),
	// renumbered by Stream so that it keeps increasing across a failover; a sentence a failed
	// vendor left with only partials keeps its number on the next vendor.
	Segment int
	// Begin and End are offsets into the leg (End == Begin for a partial whose end is unknown).
	Begin, End time.Duration
	Text       string
	// Confidence is in 0..1; -1 when the vendor gives none.
	Confidence float64
	Final      bool
	// Vendor and Model name who recognised it.
	Vendor, Model string
}

// Session is one open vendor stream. Its results go to the function given to Vendor.Open, on
// the session's own goroutine, with offsets relative to the first audio sent.
type Session interface {
	// Send writes 8 kHz 16-bit little-endian mono PCM. It may block on the network.
	Send(ctx context.Context, pcm []byte) error
	// Finish sends the vendor's end marker and waits (within ctx) until the vendor delivered
	// its last result and closed the stream.
	Finish(ctx context.Context) error
	// Done is closed when the stream ended, by Finish, Close or a failure (Err says which).
	Done() <-chan struct{}
	Err() error
	// Close drops the stream at once.
	Close()
}

// Vendor opens sessions of one ASR vendor.
type Vendor interface {
	Name() string
	Model() string
	// Open connects and completes the vendor's handshake within ctx.
	Open(ctx context.Context, results func(Result)) (Session, error)
}

// Connector opens a session of v, usually through a resilience route (breaker, timeout).
type Connector func(ctx context.Context, v Vendor, results func(Result)) (Session, error)

// Transcript states of a leg, the "transcript" field of the call's ended event.
const (
	Complete = "complete" // every frame reached a vendor that finished its results
	Partial  = "partial"  // some audio was not transcribed (queue overflow, vendor failures)
	None     = "none"     // no vendor transcribed anything
)

// Options configure a Stream.
type Options struct {
	// Vendors in order of preference; a failed one hands over to the next (cyclically).
	Vendors []Vendor
	// Connect opens a session; default v.Open.
	Connect Connector
	// Queue bounds the frames waiting for the vendor (default 500, 10 s of 20 ms frames).
	Queue int
	// Replay bounds the audio kept since the last final result, resent to the next vendor on a
	// failover (default 30 s).
	Replay time.Duration
	// Retry is the wait before trying the vendors again when all failed (default 1 s).
	Retry time.Duration
	// FinishTimeout bounds Close's wait for the last results (default 5 s).
	FinishTimeout time.Duration
	// OnResult receives every result, on the Stream's goroutine, in order.
	OnResult func(Result)
	Log      *slog.Logger
}

// Stream transcribes one leg. Create it with Start; it is a media.Sink.
type Stream struct {
	o      Options
	leg    media.Leg
	frames chan frame
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	closed  bool
	dropped int
	results int
	gaps    int // audio lost: frames dropped, replay overflowed, stream failed with audio unsent
}

type frame struct {
	off time.Duration
	pcm []byte
}

// Start begins transcribing a leg: the first vendor is connected in the background.
func Start(leg media.Leg, o Options) *Stream {
	if o.Queue <= 0 {
		o.Queue = 500
	}
	if o.Replay <= 0 {
		o.Replay = 30 * time.Second
	}
	if o.Retry <= 0 {
		o.Retry = time.Second
	}
	if o.FinishTimeout <= 0 {
		o.FinishTimeout = 5 * time.Second
	}
	if o.Connect == nil {
		o.Connect = func(ctx context.Context, v Vendor, r func(Result)) (Session, error) { return v.Open(ctx, r) }
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.OnResult == nil {
		o.OnResult = func(Result) {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Stream{o: o, leg: leg, frames: make(chan frame, o.Queue), cancel: cancel, done: make(chan struct{})}
	go s.run(ctx)
	return s
}

// Frame queues a frame; when the queue is full the frame is dropped and counted. It never
// blocks.
func (s *Stream) Frame(f media.Frame) {
	if f.Leg != s.leg {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	select {
	case s.frames <- frame{off: f.Offset, pcm: append([]byte(nil), f.PCM...)}:
	default:
		s.dropped++
		s.gaps++
	}
}

// Dropped returns how many frames the queue dropped.
func (s *Stream) Dropped() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// Close ends the leg: queued audio is sent, the vendor finishes (within FinishTimeout, or at
// once when ctx ends) and the goroutine is waited for. It returns the transcript's state.
func (s *Stream) Close(ctx context.Context) string {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.frames)
	}
	s.mu.Unlock()
	t := time.NewTimer(s.o.FinishTimeout + time.Second)
	defer t.Stop()
	select {
	case <-s.done:
	case <-ctx.Done():
		s.cancel()
		<-s.done
		s.gap(1) // cut short: what was queued or in flight is not transcribed
	case <-t.C:
		s.cancel()
		<-s.done
		s.gap(1)
	}
	s.cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.results == 0 && s.gaps > 0:
		return None
	case s.gaps > 0:
		return Partial
	}
	return Complete
}

func (s *Stream) gap(n int) {
	s.mu.Lock()
	s.gaps += n
	s.mu.Unlock()
}

// session is the state of one vendor session within run.
type session struct {
	Session
	vendor  Vendor
	results chan Result
	gone    chan struct{} // closed when run leaves the session: its late results are dropped
	base    time.Duration // leg offset of the first audio sent; -1 before
	segs    int           // renumbering: added to the vendor's segment ids
}

// run feeds the frames to a session, failing over on errors, until the frames are closed.
func (s *Stream) run(ctx context.Context) {
	defer close(s.done)
	if len(s.o.Vendors) == 0 {
		for range s.frames {
			s.gap(1)
		}
		return
	}
	r := runner{s: s, ctx: ctx, pending: -1}
	defer r.leave()
	for {
		// Connect eagerly at the start and after a failure with audio to resend; after a stream
		// ended with nothing to resend (the vendor's idle timeout while the call is on hold), only
		// once audio comes again. When every vendor failed, wait Retry before the next round.
		var retry <-chan time.Time
		if r.cur == nil && (!r.opened || len(r.replay) > 0) {
			if wait := time.Until(r.retryAt); wait > 0 {
				retry = time.After(wait)
			} else if !r.open() {
				if ctx.Err() != nil {
					return
				}
				r.retryAt = time.Now().Add(s.o.Retry)
				retry = time.After(s.o.Retry)
			}
		}
		var results <-chan Result
		var done <-chan struct{}
		if r.cur != nil {
			results, done = r.cur.results, r.cur.Done()
		}
		select {
		case <-ctx.Done():
			return
		case res := <-results:
			r.deliver(res)
		case <-done:
			r.fail(r.cur.Err())
		case <-retry:
		case f, ok := <-s.frames:
			if !ok {
				r.finish() //nolint:contextcheck // finish derives its deadline from the runner's own context, r.ctx
				return
			}
			r.replay = append(r.replay, f)
			r.replayD += dur(f.pcm)
			for r.replayD > s.o.Replay && len(r.replay) > 0 {
				r.replayD -= dur(r.replay[0].pcm)
				r.replay = r.replay[1:]
				if r.cur == nil {
					s.gap(1) // never sent, and no longer kept for the next vendor
				} else {
					r.unsure++ // sent, not yet final, and no longer kept: lost if this session fails
				}
			}
			if r.cur != nil {
				if err := r.send(f); err != nil {
					if ctx.Err() != nil {
						return
					}
					r.fail(err)
				}
			}
		}
	}
}

// runner is run's state.
type runner struct {
	s       *Stream
	ctx     context.Context
	cur     *session
	replay  []frame // audio since the last final result, resent on a failover
	replayD time.Duration
	next    int       // index of the vendor to try next
	nextSeg int       // renumbered segment ids continue from here
	unsure  int       // frames dropped from the replay while the session had no final for them
	pending int       // segment with a partial but no final yet, -1 if none
	opened  bool      // a session was open once
	retryAt time.Time // when every vendor failed: no new round before
}

func (r *runner) deliver(res Result) {
	res.Segment += r.cur.segs
	r.nextSeg = max(r.nextSeg, res.Segment+1)
	res.Begin += max(r.cur.base, 0)
	res.End += max(r.cur.base, 0)
	res.Vendor, res.Model = r.cur.vendor.Name(), r.cur.vendor.Model()
	if !res.Final {
		r.pending = res.Segment
	} else if res.Segment == r.pending {
		r.pending = -1
	}
	if res.Final {
		r.unsure = 0
		// Audio before the end of a final result never needs resending.
		for len(r.replay) > 0 && r.replay[0].off+dur(r.replay[0].pcm) <= res.End {
			r.replayD -= dur(r.replay[0].pcm)
			r.replay = r.replay[1:]
		}
	}
	r.s.mu.Lock()
	r.s.results++
	r.s.mu.Unlock()
	r.s.o.OnResult(res)
}

// drain delivers the results the current session already queued.
func (r *runner) drain() {
	for {
		select {
		case res := <-r.cur.results:
			r.deliver(res)
		default:
			return
		}
	}
}

// open connects the next vendor that answers and resends the replay buffer to it.
func (r *runner) open() bool {
	for range r.s.o.Vendors {
		v := r.s.o.Vendors[r.next%len(r.s.o.Vendors)]
		cur := &session{vendor: v, results: make(chan Result, 64), gone: make(chan struct{}), base: -1, segs: r.nextSeg}
		sess, err := r.s.o.Connect(r.ctx, v, func(res Result) {
			select {
			case cur.results <- res:
			case <-cur.gone:
			}
		})
		if err != nil {
			if r.ctx.Err() != nil {
				return false
			}
			r.s.o.Log.Warn("ASR vendor unavailable, trying the next", "vendor", v.Name(), "err", err)
			r.next++
			continue
		}
		cur.Session, r.cur, r.opened = sess, cur, true
		r.s.o.Log.Debug("ASR stream open", "vendor", v.Name(), "replay", r.replayD)
		if err := r.resend(); err != nil {
			r.fail(err)
			continue
		}
		return true
	}
	return false
}

// resend sends the replay buffer to a new session.
func (r *runner) resend() error {
	for _, f := range r.replay {
		if err := r.send(f); err != nil {
			return err
		}
	}
	return nil
}

// fail abandons the current session for the next vendor.
func (r *runner) fail(err error) {
	r.drain()
	if r.pending >= 0 {
		// The next vendor hears that sentence again (the replay): its result supersedes the
		// partial under the same segment id.
		r.nextSeg, r.pending = r.pending, -1
	}
	if r.unsure > 0 {
		r.s.gap(r.unsure)
		r.unsure = 0
	}
	r.s.o.Log.Warn("ASR stream failed, failing over", "vendor", r.cur.vendor.Name(), "err", err)
	r.leave()
	r.next++
}

// leave closes the current session, if any.
func (r *runner) leave() {
	if r.cur != nil {
		close(r.cur.gone)
		r.cur.Close()
		r.cur = nil
	}
}

// send writes one frame to the current session.
func (r *runner) send(f frame) error {
	if r.cur.base < 0 {
		r.cur.base = f.off
	}
	return r.cur.Send(r.ctx, f.pcm)
}

// finish ends the current session at the end of the leg and delivers its last results. A
// session that fails before its last result hands over to the next vendor, which gets the
// audio since the last final result, once per vendor, all within FinishTimeout.
func (r *runner) finish() {
	fctx, cancel := context.WithTimeout(r.ctx, r.s.o.FinishTimeout)
	defer cancel()
	for range len(r.s.o.Vendors) + 1 {
		if r.cur == nil && (fctx.Err() != nil || !r.open()) {
			break
		}
		err := r.finishOne(fctx)
		if err == nil {
			return
		}
		if fctx.Err() != nil {
			r.s.o.Log.Warn("ASR stream did not finish in time", "vendor", r.cur.vendor.Name(), "err", err)
			break
		}
		r.fail(err)
	}
	if len(r.replay) > 0 {
		r.s.gap(len(r.replay)) // audio whose results never came
	}
}

func (r *runner) finishOne(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- r.cur.Finish(ctx) }()
	for {
		select {
		case res := <-r.cur.results:
			r.deliver(res)
		case err := <-errc:
			r.drain()
			return err
		}
	}
}

// dur is the duration of 8 kHz 16-bit PCM.
func dur(pcm []byte) time.Duration { return time.Duration(len(pcm)/2) * time.Second / media.Rate }

// Upsample2 doubles the sample rate of 16-bit little-endian PCM by linear interpolation (8 kHz
// G.711 audio to the 16 kHz iFlytek takes). prev is the last sample of the previous chunk (0 at
// the start); it returns the new last sample. This is the only resampler of the connector.
func Upsample2(pcm []byte, prev int16) ([]byte, int16) {
	out := make([]byte, 0, 2*len(pcm))
	for i := 0; i+1 < len(pcm); i += 2 {
		v := int16(binary.LittleEndian.Uint16(pcm[i:]))
		mid := int16((int32(prev) + int32(v)) / 2)
		out = binary.LittleEndian.AppendUint16(out, uint16(mid))
		out = binary.LittleEndian.AppendUint16(out, uint16(v))
		prev = v
	}
	return out, prev
}

// VendorError is an error answer of a vendor: its code (iFlytek "10110", Aliyun "40000001")
// and description.
type VendorError struct {
	Vendor, Code, Desc string
}

func (e *VendorError) Error() string {
	return fmt.Sprintf("%s error %s: %s", e.Vendor, e.Code, e.Desc)
}

// ErrClosed is the Err of a session closed by its owner.
var ErrClosed = errors.New("asr session closed")
