package assist

import (
	"context"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/pii"
	"github.com/omnibus-dev/omnibus/schemas"
)

// This file streams a suggestion to the desk while the model writes it: each piece the vendor
// streams becomes an omni.live.ai.suggest.delta on omni.live.ai.suggest.<request id> (bus.Live:
// core NATS, at most once, never stored). The .completed event stays the record and replaces the
// streamed text, so a lost delta costs the agent smoothness, never text.

// The live event type and its subject's prefix.
const (
	TypeDelta         = schemas.TypeLiveAiSuggestDelta
	SubjectLivePrefix = "omni.live.ai.suggest."
)

// RouteDelta is the live route; its subject's last token is the request's id.
var RouteDelta = connector.Route{Subject: SubjectLivePrefix + "*", Type: TypeDelta}

// delta is the data of omni.live.ai.suggest.delta.
type delta struct {
	ConversationID string `json:"conversation_id"`
	AgentID        string `json:"agent_id,omitempty"`
	Seq            int    `json:"seq"`
	Attempt        int    `json:"attempt,omitempty"`
	Offset         int    `json:"offset"`
	Text           string `json:"text"`
}

// liveText turns the model's pieces into the agent's: placeholders restored, and a placeholder
// split across pieces (<PHO + NE_1>) held back until it is whole. The concatenation of what push
// and flush return is ph.Restore of the concatenation of the pieces (fuzzed).
type liveText struct {
	ph      *pii.Placeholders
	pending string
}

// maxPlaceholder bounds how much text a possible placeholder may hold back.
const maxPlaceholder = len("<BANK_CARD_") + 6

var placeholderKinds = []string{"PHONE_", "ID_CARD_", "BANK_CARD_", "EMAIL_"}

// push adds a piece and returns the text that is ready, restored ("" when everything is held).
func (l *liveText) push(s string) string {
	l.pending += s
	ready := l.pending
	if i := strings.LastIndexByte(l.pending, '<'); i >= 0 && couldBePlaceholder(l.pending[i:]) {
		ready, l.pending = l.pending[:i], l.pending[i:]
	} else {
		l.pending = ""
	}
	return l.ph.Restore(ready)
}

// flush returns what is held back (the stream ended), restored.
func (l *liveText) flush() string {
	s := l.pending
	l.pending = ""
	return l.ph.Restore(s)
}

// couldBePlaceholder reports whether s (starting with "<") is a placeholder's beginning that is
// not yet closed: "<", "<PHO", "<PHONE_", "<PHONE_12".
func couldBePlaceholder(s string) bool {
	if len(s) > maxPlaceholder || strings.IndexByte(s, '>') >= 0 {
		return false
	}
	rest := s[1:]
	for _, k := range placeholderKinds {
		if strings.HasPrefix(k, rest) {
			return true
		}
		if digits, ok := strings.CutPrefix(rest, k); ok && strings.Trim(digits, "0123456789") == "" {
			return true
		}
	}
	return false
}

// streamer publishes the deltas of one request.
type streamer struct {
	c       *Connector
	req     event.Event
	data    request
	text    liveText
	seq     int
	attempt int
	offset  int
}

// streamer returns the request's streamer; nil (nothing streamed) when the request's id cannot
// be a subject token.
func (c *Connector) streamer(req event.Event, data request, ph *pii.Placeholders) *streamer {
	if strings.ContainsAny(req.ID(), ".*> \t\r\n") {
		return nil
	}
	return &streamer{c: c, req: req, data: data, text: liveText{ph: ph}}
}

// begin starts attempt n: a retried call streams its text again from the start.
func (s *streamer) begin(n int) {
	s.attempt, s.offset = n, 0
	s.text.pending = ""
}

// piece is ReadStream's onDelta.
func (s *streamer) piece(ctx context.Context, p string) { s.publish(ctx, s.text.push(p)) }

// end publishes what was held back.
func (s *streamer) end(ctx context.Context) { s.publish(ctx, s.text.flush()) }

func (s *streamer) publish(ctx context.Context, text string) {
	if text == "" || s.offset >= maxText {
		return
	}
	text = truncate(text, maxText-s.offset)
	s.seq++
	e, err := s.c.rt.NewEvent(TypeDelta, delta{ConversationID: s.data.ConversationID, AgentID: s.data.AgentID, Seq: s.seq,
		Attempt: s.attempt, Offset: s.offset, Text: text},
		event.WithID("assist:suggest:"+s.req.ID()+":"+strconv.Itoa(s.seq)), event.WithCorrelationID(s.req.ID()))
	s.offset += utf8.RuneCountInString(text)
	if err == nil {
		err = s.c.rt.PublishLive(ctx, bus.Outgoing{Subject: SubjectLivePrefix + s.req.ID(), Event: e})
	}
	if err != nil { // at most once: a lost delta is replaced by the completed event
		s.c.rt.Log.Debug("suggestion delta not published", "request", s.req.ID(), "seq", s.seq, "err", err)
	}
}
