package voice

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
	"github.com/omnibus-dev/omnibus/services/voice/internal/asr"
	"github.com/omnibus-dev/omnibus/services/voice/internal/media"
)

// connectSettings are the ASR routes' figures: one attempt (the failover to the other vendor is
// the retry), the handshake within 3 s. Operators override them with
// RESILIENCE_<IFLYTEK|ALIYUN>_ASR_CONNECT_*.
var connectSettings = resilience.Settings{Timeout: 3 * time.Second, Budget: 4 * time.Second, MaxAttempts: 1,
	BreakerMinCalls: 5, BreakerOpenFor: 30 * time.Second}

// transcriber starts the ASR streams of calls: the configured vendor first, the other one (when
// configured and VOICE_ASR_FAILOVER) next, each connected through its resilience route.
type transcriber struct {
	s       *server
	vendors []asr.Vendor
	routes  map[string]*resilience.Route
}

// newTranscriber returns nil when VOICE_ASR is none.
func newTranscriber(s *server) (*transcriber, error) {
	cfg := s.cfg
	if cfg.ASR == asrNone {
		return nil, nil
	}
	fly := &asr.IFlytek{URL: cfg.IFlytekURL, AppID: cfg.IFlytekAppID, APIKey: cfg.IFlytekAPIKey, Lang: cfg.IFlytekLang, PD: cfg.IFlytekPD}
	ali := &asr.Aliyun{TokenURL: cfg.AliyunTokenURL, URL: cfg.AliyunURL, AccessKeyID: cfg.AliyunAccessKeyID,
		AccessKeySecret: cfg.AliyunAccessSecret, AppKey: cfg.AliyunAppKey}
	t := &transcriber{s: s, routes: map[string]*resilience.Route{}}
	switch cfg.ASR {
	case asrIFlytek:
		t.vendors = []asr.Vendor{fly}
		if cfg.ASRFailover && cfg.hasAliyun() {
			t.vendors = append(t.vendors, ali)
		}
	case asrAliyun:
		t.vendors = []asr.Vendor{ali}
		if cfg.ASRFailover && cfg.hasIFlytek() {
			t.vendors = append(t.vendors, fly)
		}
	}
	reg, err := s.rt.Resilience()
	if err != nil {
		return nil, err
	}
	for _, v := range t.vendors {
		rt, err := reg.Route(resilience.RouteSpec{Vendor: v.Name(), Op: "asr_connect", Idempotent: true, Settings: connectSettings,
			Classify: classifyHandshake})
		if err != nil {
			return nil, err
		}
		t.routes[v.Name()] = rt
	}
	return t, nil
}

// classifyHandshake: a refused signature, key, licence or parameter is permanent (retrying the
// same vendor cannot help); a connection limit is a rate limit; anything else is retryable.
func classifyHandshake(status int, code string) resilience.Class {
	switch code {
	case "":
		return resilience.StatusClass(status)
	case "10105", "10106", "10107", "10110", "40000001", "40000003", "40020105", "SignatureDoesNotMatch",
		"InvalidAccessKeyId.NotFound", "IncompleteSignature":
		return resilience.ClassPermanent
	case "10800", "40000005":
		return resilience.ClassRateLimited
	}
	return resilience.ClassRetryable
}

// connector opens a vendor session for a call through the vendor's route.
func (t *transcriber) connector(c callInfo) asr.Connector {
	return func(ctx context.Context, v asr.Vendor, results func(asr.Result)) (asr.Session, error) {
		return resilience.Do(ctx, t.routes[v.Name()], resilience.Call{CorrelationID: c.ID, Key: c.ID},
			func(ctx context.Context, a *resilience.Attempt) (asr.Session, error) {
				sess, err := v.Open(ctx, results)
				reportVendorError(a, err)
				return sess, err
			})
	}
}

// reportVendorError tells the resilience attempt the vendor's status and code in err, if any
// (they classify it and go into the audit record).
func reportVendorError(a *resilience.Attempt, err error) {
	var ve *asr.VendorError
	var he *asr.HandshakeError
	switch {
	case errors.As(err, &ve):
		status := 0
		if errors.As(err, &he) {
			status = he.Status
		}
		a.Response(status, ve.Code, []byte(ve.Desc))
	case errors.As(err, &he):
		a.Response(he.Status, "", nil)
	}
}

// start begins transcribing a leg of c; its results are published as they come, the final ones
// with the leg's voice tone over the segment when tone is not nil.
func (t *transcriber) start(c callInfo, leg media.Leg, tone *toneMeter) *asr.Stream {
	p := &segmentPublisher{s: t.s, call: c, leg: leg, tone: tone, partials: map[int]int{}}
	return asr.Start(leg, asr.Options{Vendors: t.vendors, Connect: t.connector(c), Queue: t.s.cfg.ASRQueue,
		FinishTimeout: t.s.cfg.ASRFinish, OnResult: p.publish, Log: t.s.rt.Log.With("call_id", c.ID, "leg", string(leg))})
}

// segmentPublisher publishes one leg's results as omni.channel.call.segment.transcribed.
type segmentPublisher struct {
	s        *server
	call     callInfo
	leg      media.Leg
	tone     *toneMeter // nil: no tone
	mu       sync.Mutex
	partials map[int]int // partials published per segment
	marked   bool        // the spool's transcript marker is written (a final was published)
}

// segmentData is the event's data (schemas/omni.channel.call.segment.transcribed.json).
type segmentData struct {
	Channel    string    `json:"channel"`
	CallID     string    `json:"call_id"`
	SegmentID  int       `json:"segment_id"`
	Speaker    string    `json:"speaker"`
	StartMS    int64     `json:"start_ms"`
	EndMS      int64     `json:"end_ms"`
	Text       string    `json:"text"`
	Final      bool      `json:"final"`
	Vendor     string    `json:"vendor"`
	Model      string    `json:"model"`
	Confidence *float64  `json:"confidence,omitempty"`
	Tone       *toneData `json:"tone,omitempty"`
}

// maxText is the schema's bound on a segment's text (in characters).
const maxText = 8192

// segmentEventID is the deterministic id of a result: the call, the leg, the segment, and final
// or the partial's number within the segment, so a republished result is stored once.
func segmentEventID(callID string, leg media.Leg, seg int, final bool, partial int) string {
	kind := "final"
	if !final {
		kind = "p" + strconv.Itoa(partial)
	}
	return fmt.Sprintf("voice:%s:%s:seg%d:%s", callID, leg, seg, kind)
}

func (p *segmentPublisher) publish(r asr.Result) {
	p.mu.Lock()
	n := p.partials[r.Segment]
	if !r.Final {
		p.partials[r.Segment] = n + 1
	}
	p.mu.Unlock()
	text := r.Text
	if utf8.RuneCountInString(text) > maxText {
		text = string([]rune(text)[:maxText])
	}
	d := segmentData{Channel: "voice", CallID: p.call.ID, SegmentID: r.Segment, Speaker: string(p.leg),
		StartMS: r.Begin.Milliseconds(), EndMS: max(r.End, r.Begin).Milliseconds(), Text: text, Final: r.Final,
		Vendor: r.Vendor, Model: r.Model}
	if r.Confidence >= 0 && r.Confidence <= 1 {
		conf := r.Confidence
		d.Confidence = &conf
	}
	if r.Final && p.tone != nil {
		d.Tone = p.tone.segment(r.Begin, max(r.End, r.Begin))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, err := p.s.rt.NewEvent(TypeSegment, d, event.WithID(segmentEventID(p.call.ID, p.leg, r.Segment, r.Final, n)),
		event.WithPartitionKey(p.call.partitionKey()), event.WithSubject(p.call.ID))
	if err == nil {
		err = p.s.rt.Publish(ctx, bus.Outgoing{Subject: SubjectTranscript, Event: e})
	}
	if err != nil {
		p.s.rt.Log.Warn("transcript segment not published", "call_id", p.call.ID, "segment", r.Segment, "final", r.Final, "err", err)
		return
	}
	if r.Final {
		p.mu.Lock()
		mark := !p.marked
		p.marked = true
		p.mu.Unlock()
		if mark {
			p.s.rec.markTranscribed(p.call.ID) // a crash from now on leaves a partial transcript, not none
		}
	}
}
