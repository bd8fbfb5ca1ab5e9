package engine

import (
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/identity"
	"github.com/omnibus-dev/omnibus/pkg/pii"
	"github.com/omnibus-dev/omnibus/services/unifier/internal/store"
)

// Calls (omni.in.voice.call) take the set-based path as messages do: a call event's identity is
// the customer's number — the caller's on an inbound call, the callee's on an outbound one — and
// resolves like a message's sender. The first event of a call the store has not seen (normally
// call.started; call.answered or call.ended when started was lost) records the call on the
// customer's open conversation, opening one as a message would, with channel voice; the call's
// later events only fill in the call's row and never touch a conversation, so an agent closing
// the conversation while the call rings does not make call.ended open another. The row keeps the
// first value of each column (store.QueueUpsertCalls), so any order of a call's events, and any
// replay, ends in the same row.

// callEvent is a decoded call event.
type callEvent struct {
	CallEvent
	kind     string      // started, answered or ended
	from, to identity.ID // normalised when they can be, else as sent
}

// prepareCall decodes and normalises a call event; its errors are permanent.
func (en *Engine) prepareCall(i int, d bus.Delivery) (*msgEvent, error) {
	var c callEvent
	if err := decode(d.Event, &c.CallEvent); err != nil {
		return nil, err
	}
	if c.CallID == "" {
		return nil, bus.Permanent(fmt.Errorf("the call has no call_id"))
	}
	var at time.Time
	switch d.Event.Type() {
	case TypeCallStarted:
		c.kind, at = "started", c.At
	case TypeCallAnswered:
		c.kind, at = "answered", c.At
	default:
		c.kind, at = "ended", c.EndedAt
	}
	who, other := c.From, &c.to
	if c.Direction == "outbound" {
		who, other = c.To, &c.from
	}
	ids, secrets, err := en.normalize(who, nil)
	if err != nil {
		return nil, err
	}
	o := c.To
	if c.Direction == "outbound" {
		o = c.From
	}
	if *other, _, err = en.key(o); err != nil {
		*other = identity.ID{Kind: o.Kind, Value: o.Value}
		if pii.IsCiphertext(o.Value) || (en.cfg.PII != nil && pii.SealedKinds[o.Kind]) {
			// Not kept in clear: a sealed value without index, or a personal value that does
			// not normalise, is kept by its mask only.
			*other = identity.ID{Kind: o.Kind, Value: identity.Mask(*other)}
		}
	}
	if c.Direction == "outbound" {
		c.to = ids[0]
	} else {
		c.from = ids[0]
	}
	ch := c.Channel
	if ch == "" {
		ch = "voice"
	}
	at = eventTime(d.Event, at)
	return &msgEvent{i: i, ev: d.Event, call: &c, ids: ids, sorted: ids, secrets: secrets, at: at, atDB: dbTime(at), msgID: d.Event.ID(), channel: ch}, nil
}

// knownCall applies call event e if the store or this round already has its call: it fills in
// the call's row and emits omni.desk.call.updated (nothing for a call.started that comes after
// a later event of its call, nor for a call.answered that comes after its call.ended: the desk
// keeps what the call ended as). It reports whether it did.
func (rd *round) knownCall(e *msgEvent) bool {
	var conv, cust uuid.UUID
	var ended bool
	if i, ok := rd.callIdx[e.call.CallID]; ok {
		conv, cust, ended = rd.callRows[i].Conversation, rd.callRows[i].Customer, rd.callRows[i].EndedAt != nil
	} else if k, ok := rd.knownCalls[e.call.CallID]; ok {
		conv, cust, ended = k.Conversation, k.Customer, k.Ended
	} else {
		return false
	}
	rd.recordCall(e, conv, cust)
	if e.call.kind == "ended" || (e.call.kind == "answered" && !ended) {
		rd.out = append(rd.out, newOutboxRow(e.ev, TypeDeskCallUpdated, TypeDeskCallUpdated, conv.String(), "",
			deskCallUpdated{Call: deskCallOf(e, conv, cust)}))
	}
	return true
}

// newCall records the first event e of a call on conv, customer c's open conversation (view),
// and emits omni.desk.call.ringing (call.started: with the customer's view, for the screen pop)
// or omni.desk.call.updated.
func (rd *round) newCall(e *msgEvent, c *cust, view ConversationView) {
	conv := c.open.id
	rd.recordCall(e, conv, c.id)
	call := deskCallOf(e, conv, c.id)
	if e.call.kind != "started" {
		rd.out = append(rd.out, newOutboxRow(e.ev, TypeDeskCallUpdated, TypeDeskCallUpdated, view.ID, "", deskCallUpdated{Call: call}))
		return
	}
	c.needStored = c.needStored || !c.isNew
	rd.views = append(rd.views, pendingView{c: c, nAdded: len(c.added), name: c.name, row: len(rd.out),
		ringing: &deskCallRinging{Call: call, Conversation: view}})
	rd.out = append(rd.out, newOutboxRow(e.ev, TypeDeskCallRinging, TypeDeskCallRinging, view.ID, "", nil))
}

// recordCall folds call event e into the round's row of its call.
func (rd *round) recordCall(e *msgEvent, conv, cust uuid.UUID) {
	c := e.call
	i, ok := rd.callIdx[c.CallID]
	if !ok {
		if rd.callIdx == nil {
			rd.callIdx = map[string]int{}
		}
		i = len(rd.callRows)
		rd.callIdx[c.CallID] = i
		rd.callRows = append(rd.callRows, store.Call{ID: c.CallID, Conversation: conv, Customer: cust, Direction: c.Direction,
			FromKind: c.from.Kind, FromValue: c.from.Value, ToKind: c.to.Kind, ToValue: c.to.Value, EventID: e.ev.ID()})
	}
	r := &rd.callRows[i]
	set := func(dst **time.Time, t *time.Time) {
		if *dst == nil && t != nil && !t.IsZero() {
			u := t.UTC()
			*dst = &u
		}
	}
	r.Transcript = store.FoldTranscript(r.Transcript, c.Transcript)
	switch c.kind {
	case "started":
		set(&r.StartedAt, &e.at)
	case "answered":
		set(&r.AnsweredAt, &e.at)
	case "ended":
		set(&r.StartedAt, &c.StartedAt)
		set(&r.AnsweredAt, c.AnsweredAt)
		set(&r.EndedAt, &e.at)
		r.HangupSide = firstOf(r.HangupSide, c.HangupSide)
		r.EndReason = firstOf(r.EndReason, c.Reason)
		r.RecordingURL = firstOf(r.RecordingURL, recordingURL(c))
	}
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// recordingURL is the call's recording: the caller leg's, else the first leg's.
func recordingURL(c *callEvent) string {
	if c.Recording == nil || len(c.Recording.Legs) == 0 {
		return ""
	}
	for _, l := range c.Recording.Legs {
		if l.Leg == "caller" {
			return l.URL
		}
	}
	return c.Recording.Legs[0].URL
}

// deskCallOf is what the desk shows of call event e on conversation conv.
func deskCallOf(e *msgEvent, conv, cust uuid.UUID) deskCall {
	c := e.call
	d := deskCall{CallID: c.CallID, EventID: e.ev.ID(), ConversationID: conv.String(), CustomerID: cust.String(), Direction: c.Direction,
		From: IdentityView{Kind: c.from.Kind, Masked: identity.Mask(c.from), Source: e.channel},
		To:   IdentityView{Kind: c.to.Kind, Masked: identity.Mask(c.to), Source: e.channel}, At: e.at}
	switch c.kind {
	case "started":
		d.State, d.StartedAt = "ringing", &e.at
	case "answered":
		d.State, d.AnsweredAt, d.Transcript = "answered", &e.at, c.Transcript
	case "ended":
		d.State = "ended"
		if c.AnsweredAt == nil {
			d.State = "missed"
		}
		started, ended := c.StartedAt.UTC(), e.at
		d.StartedAt, d.EndedAt, d.AnsweredAt = &started, &ended, c.AnsweredAt
		d.DurationMS, d.TalkMS = &c.DurationMS, &c.TalkMS
		d.HangupSide, d.Reason, d.RecordingURL, d.Transcript = c.HangupSide, c.Reason, recordingURL(c), c.Transcript
	}
	return d
}

// deskCall is a call as the desk shows it (schemas/desk.defs.json#/$defs/callView).
type deskCall struct {
	CallID         string       `json:"call_id"`
	EventID        string       `json:"event_id"`
	ConversationID string       `json:"conversation_id"`
	CustomerID     string       `json:"customer_id"`
	Direction      string       `json:"direction"`
	From           IdentityView `json:"from"`
	To             IdentityView `json:"to"`
	State          string       `json:"state"` // ringing, answered, ended, missed
	At             time.Time    `json:"at"`    // of the event
	StartedAt      *time.Time   `json:"started_at,omitempty"`
	AnsweredAt     *time.Time   `json:"answered_at,omitempty"`
	EndedAt        *time.Time   `json:"ended_at,omitempty"`
	DurationMS     *int64       `json:"duration_ms,omitempty"`
	TalkMS         *int64       `json:"talk_ms,omitempty"`
	HangupSide     string       `json:"hangup_side,omitempty"`
	Reason         string       `json:"reason,omitempty"`
	RecordingURL   string       `json:"recording_url,omitempty"`
	// Transfer is the outcome of the call's latest transfer (transfers.go); only an outcome's
	// update carries it, and the desk keeps it.
	Transfer *CallTransferView `json:"transfer,omitempty"`
	// Transcript is the state of the call's transcript (transcripts.go): what its event said,
	// or, on a transfer's or a transcription's update, what the call's row has.
	Transcript string `json:"transcript,omitempty"`
}

// deskCallRinging is the data of omni.desk.call.ringing.
type deskCallRinging struct {
	Call         deskCall         `json:"call"`
	Conversation ConversationView `json:"conversation"`
	Customer     CustomerView     `json:"customer"`
}

// deskCallUpdated is the data of omni.desk.call.updated.
type deskCallUpdated struct {
	Call deskCall `json:"call"`
}
