package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/identity"
	"github.com/omnibus-dev/omnibus/services/unifier/internal/store"
)

// Transcripts (omni.in.voice.transcript): a final segment of the caller's leg is what the
// customer said, so it becomes one of the customer's messages — channel voice, a text body —
// on the customer's open conversation, where the call's events put the call, and the desk sees
// it as any inbound message (omni.desk.message.added). The segment carries no number: its
// customer is the call's, found from a call event earlier in the batch or from the calls table.
// The voice connector publishes a call's segments with the call's partition key, after its
// started event, so the lane that records the call sees its segments after it; a segment whose
// call is not recorded yet is retried (segmentRetry) and, when the call never comes, dead-lettered
// with that cause.
//
// Partial segments are superseded by the final one and the agent's leg (callee) is the agent's
// own speech: neither is stored (the desk's live view of partials is the voice connector's
// business, not the store's). An empty final segment (nothing intelligible) is not stored either.
//
// A final segment's tone (the caller's voice over it, measured by the voice connector) goes onto
// the message's body as "tone", beside the text, so the desk and the sentiment connector read it
// with the words.

// segmentRetry is how long a segment whose call is not recorded yet waits before it is tried
// again.
const segmentRetry = 2 * time.Second

// prepareSegment decodes a transcript segment. It returns nil (and no error) for a segment the
// store does not keep; the segment's identity is filled in by resolveSegments.
func (en *Engine) prepareSegment(i int, d bus.Delivery) (*msgEvent, *Segment, error) {
	var s Segment
	if err := decode(d.Event, &s); err != nil {
		return nil, nil, err
	}
	if s.CallID == "" {
		return nil, nil, bus.Permanent(errors.New("the segment has no call_id"))
	}
	text := strings.TrimSpace(s.Text)
	if !s.Final || s.Speaker != "caller" || text == "" {
		return nil, nil, nil
	}
	body, err := json.Marshal(voiceText{Type: "text", Text: text, Tone: toneOf(s.Tone)})
	if err != nil {
		return nil, nil, bus.Permanent(err)
	}
	ch := s.Channel
	if ch == "" {
		ch = "voice"
	}
	at := eventTime(d.Event, time.Time{})
	m := MessageReceived{Channel: ch, Message: body}
	return &msgEvent{i: i, ev: d.Event, m: m, at: at, atDB: dbTime(at), msgID: d.Event.ID(), channel: ch, body: body}, &s, nil
}

// voiceText is the body of a transcript's message: its text and, when the voice connector
// measured it, the caller's voice tone over the segment (what the sentiment connector combines
// with the words).
type voiceText struct {
	Type string          `json:"type"`
	Text string          `json:"text"`
	Tone json.RawMessage `json:"tone,omitempty"`
}

// toneOf returns the segment's tone when it is a JSON object (the schema validated it), else
// nothing.
func toneOf(raw json.RawMessage) json.RawMessage {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' || !json.Valid(raw) {
		return nil
	}
	return raw
}

// resolveSegments gives each segment of run its call's customer identity: that of a call event
// before it in run, else the calls table's. It returns run without the segments whose call is
// not known, whose errors it sets.
func (en *Engine) resolveSegments(ctx context.Context, run []*msgEvent, segs map[*msgEvent]*Segment, errs []error) []*msgEvent {
	if len(segs) == 0 {
		return run
	}
	parties := map[string]identity.ID{}
	var missing []string
	for _, e := range run {
		switch s, isSeg := segs[e]; {
		case e.call != nil && len(e.ids) > 0:
			if _, ok := parties[e.call.CallID]; !ok {
				parties[e.call.CallID] = e.ids[0]
			}
		case isSeg:
			if _, ok := parties[s.CallID]; !ok {
				missing = append(missing, s.CallID)
			}
		}
	}
	var lookupErr error
	if len(missing) > 0 {
		stored, err := store.CallParties(ctx, en.pool, missing)
		lookupErr = err
		for _, p := range stored {
			if _, ok := parties[p.CallID]; !ok {
				parties[p.CallID] = identity.ID{Kind: p.Kind, Value: p.Value}
			}
		}
	}
	out := run[:0]
	for _, e := range run {
		s, isSeg := segs[e]
		if !isSeg {
			out = append(out, e)
			continue
		}
		id, ok := parties[s.CallID]
		switch {
		case ok:
			e.ids = []identity.ID{id}
			e.sorted = e.ids
			out = append(out, e)
		case lookupErr != nil:
			errs[e.i] = fmt.Errorf("%s %s: looking up call %s: %w", e.ev.Type(), e.ev.ID(), s.CallID, lookupErr)
		default:
			errs[e.i] = fmt.Errorf("%s %s: %w", e.ev.Type(), e.ev.ID(),
				bus.RetryAfter(fmt.Errorf("call %s is not recorded (its call.started has not been applied)", s.CallID), segmentRetry))
		}
	}
	return out
}
