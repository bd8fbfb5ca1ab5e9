package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/identity"
	"github.com/omnibus-dev/omnibus/services/unifier/internal/store"
)

// Transfer outcomes (omni.in.voice.transfer): what became of an agent's transfer command —
// omni.channel.call.transferred or .transfer.failed — goes onto the call's row (calls.transfer)
// and to the desk as an omni.desk.call.updated whose call carries it, so the agent who pressed
// Transfer sees that it worked or why not. An outcome names only its call: the call's row gives
// the conversation and the parties. The voice connector publishes outcomes with the call's
// partition key, after the call's started event, so the lane that recorded the call sees them
// after it; an outcome of a call not recorded yet is retried (segmentRetry) as a segment is.
//
// An agent may try again after a failure; the row and the desk keep the outcome with the latest
// "at", so outcomes applied in any order, or replayed, end the same. Outcomes are applied after
// the batch's run (one short transaction each): a call started in the same batch is recorded by
// then.

// transferEvent is a decoded call outcome: a transfer's (view) or, with transcript set, the end
// of a provider call's after-call transcription (transcripts.go).
type transferEvent struct {
	i          int
	d          bus.Delivery
	callID     string
	view       CallTransferView
	transcript string    // complete, partial or none: an omni.channel.call.transcribed
	at         time.Time // of a transcribed outcome
}

// CallTransferView is a transfer's outcome as the desk shows it
// (schemas/desk.defs.json#/$defs/callTransfer).
type CallTransferView struct {
	Outcome string    `json:"outcome"` // transferred or failed
	Target  string    `json:"target"`
	Reason  string    `json:"reason,omitempty"`
	Detail  string    `json:"detail,omitempty"`
	Status  int       `json:"status,omitempty"`
	AgentID string    `json:"agent_id,omitempty"`
	At      time.Time `json:"at"`
}

// prepareTransfer decodes a transfer outcome; its errors are permanent.
func prepareTransfer(i int, d bus.Delivery) (transferEvent, error) {
	var o struct {
		CallID  string    `json:"call_id"`
		Target  string    `json:"target"`
		Reason  string    `json:"reason"`
		Detail  string    `json:"detail"`
		Status  int       `json:"status"`
		AgentID string    `json:"agent_id"`
		At      time.Time `json:"at"`
	}
	if err := decode(d.Event, &o); err != nil {
		return transferEvent{}, err
	}
	if o.CallID == "" {
		return transferEvent{}, bus.Permanent(errors.New("the transfer outcome has no call_id"))
	}
	v := CallTransferView{Outcome: "transferred", Target: o.Target, AgentID: o.AgentID, At: eventTime(d.Event, o.At)}
	if d.Event.Type() == TypeCallTransferFailed {
		v.Outcome, v.Reason, v.Detail, v.Status = "failed", o.Reason, o.Detail, o.Status
	}
	return transferEvent{i: i, d: d, callID: o.CallID, view: v}, nil
}

// applyTransfers applies transfer outcomes ts in order, setting their errors in errs.
func (en *Engine) applyTransfers(ctx context.Context, ts []transferEvent, errs []error) {
	for _, t := range ts {
		if err := en.applyTransfer(ctx, t); err != nil {
			errs[t.i] = fmt.Errorf("%s %s: %w", t.d.Event.Type(), t.d.Event.ID(), err)
		}
	}
}

// applyTransfer records outcome t on its call's row, unless the row has a later one (a transfer)
// or a final transcript state already (a transcription outcome), and emits the call's
// omni.desk.call.updated with it.
func (en *Engine) applyTransfer(ctx context.Context, t transferEvent) error {
	set, at := `transfer = $2 WHERE call_id = $1 AND (transfer IS NULL OR (transfer->>'at')::timestamptz <= $3)`, t.view.At
	args := []any{t.callID, nil, at}
	if t.transcript != "" {
		// The first final state stays: a transcription outcome replaces only live or pending.
		set, at = `transcript = $2 WHERE call_id = $1 AND (transcript IS NULL OR transcript NOT IN ('complete', 'partial', 'none'))`, t.at
		args = []any{t.callID, t.transcript}
	} else {
		raw, err := json.Marshal(t.view)
		if err != nil {
			return bus.Permanent(err)
		}
		args[1] = raw
	}
	return en.inTx(ctx, func(tx pgx.Tx) (int, error) {
		var r store.Call
		var side, reason, rec, tr *string
		err := tx.QueryRow(ctx, `UPDATE calls SET `+set+`
			RETURNING conversation_id, customer_id, direction, from_kind, from_value, to_kind, to_value,
				started_at, answered_at, ended_at, hangup_side, end_reason, recording_url, transcript`, args...).
			Scan(&r.Conversation, &r.Customer, &r.Direction, &r.FromKind, &r.FromValue, &r.ToKind, &r.ToValue,
				&r.StartedAt, &r.AnsweredAt, &r.EndedAt, &side, &reason, &rec, &tr)
		if errors.Is(err, pgx.ErrNoRows) {
			var known bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM calls WHERE call_id = $1)`, t.callID).Scan(&known); err != nil {
				return 0, err
			}
			if known {
				return 0, nil // the row has a later outcome: this one is history
			}
			return 0, bus.RetryAfter(fmt.Errorf("call %s is not recorded (its call.started has not been applied)", t.callID), segmentRetry)
		}
		if err != nil {
			return 0, err
		}
		deref := func(p *string) string {
			if p == nil {
				return ""
			}
			return *p
		}
		call := deskCall{CallID: t.callID, EventID: t.d.Event.ID(), ConversationID: r.Conversation.String(),
			CustomerID: r.Customer.String(), Direction: r.Direction,
			From:  IdentityView{Kind: r.FromKind, Masked: identity.Mask(identity.ID{Kind: r.FromKind, Value: r.FromValue}), Source: "voice"},
			To:    IdentityView{Kind: r.ToKind, Masked: identity.Mask(identity.ID{Kind: r.ToKind, Value: r.ToValue}), Source: "voice"},
			State: callState(r), At: at, StartedAt: r.StartedAt, AnsweredAt: r.AnsweredAt, EndedAt: r.EndedAt,
			HangupSide: deref(side), Reason: deref(reason), RecordingURL: deref(rec), Transcript: deref(tr)}
		if t.transcript == "" {
			view := t.view
			call.Transfer = &view
		}
		row := newOutboxRow(t.d.Event, TypeDeskCallUpdated, TypeDeskCallUpdated, r.Conversation.String(), "", deskCallUpdated{Call: call})
		rows := []outboxRow{row}
		en.sealPartitionKeys(rows)
		enc, err := encodeOutbox(rows, map[string]string{t.d.Event.ID(): traceParent(t.d)})
		if err != nil {
			return 0, err
		}
		return 1, store.InsertOutbox(ctx, tx, 1, enc)
	})
}

// callState is the desk's state of a stored call.
func callState(r store.Call) string {
	switch {
	case r.EndedAt != nil && r.AnsweredAt != nil:
		return "ended"
	case r.EndedAt != nil:
		return "missed"
	case r.AnsweredAt != nil:
		return "answered"
	}
	return "ringing"
}
