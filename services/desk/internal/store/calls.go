package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Call is a phone call as the unifier describes it (schemas/desk.defs.json#/$defs/callView) and
// as a timeline shows it.
type Call struct {
	CallID         string       `json:"call_id"`
	EventID        string       `json:"event_id,omitempty"`
	ConversationID string       `json:"conversation_id"`
	CustomerID     string       `json:"customer_id"`
	Direction      string       `json:"direction"`
	From           IdentityView `json:"from"`
	To             IdentityView `json:"to"`
	State          string       `json:"state"` // ringing | answered | ended | missed
	At             time.Time    `json:"at"`
	CallDetails
}

// CallDetails is what the events of a call tell about it besides who and where.
type CallDetails struct {
	StartedAt    *time.Time `json:"started_at,omitempty"`
	AnsweredAt   *time.Time `json:"answered_at,omitempty"`
	EndedAt      *time.Time `json:"ended_at,omitempty"`
	DurationMS   *int64     `json:"duration_ms,omitempty"`
	TalkMS       *int64     `json:"talk_ms,omitempty"`
	HangupSide   string     `json:"hangup_side,omitempty"`
	Reason       string     `json:"reason,omitempty"`
	RecordingURL string     `json:"recording_url,omitempty"`
	// Transfer is the outcome of the call's latest transfer command, when it had one.
	Transfer *CallTransfer `json:"transfer,omitempty"`
	// Transcript is the state of the call's transcript: live or pending (being made), then
	// complete, partial or none; empty when the call is not transcribed.
	Transcript string `json:"transcript,omitempty"`
	// PlayURL is a signed, expiring link the page plays the recording from (set by the API for
	// the agent it answers, not stored).
	PlayURL string `json:"play_url,omitempty"`
}

// CallTransfer is what became of a transfer of the call (schemas/desk.defs.json#/$defs/callTransfer).
type CallTransfer struct {
	Outcome string    `json:"outcome"` // transferred or failed
	Target  string    `json:"target"`
	Reason  string    `json:"reason,omitempty"` // not_answered, refused, failed, timeout, ended
	Detail  string    `json:"detail,omitempty"`
	Status  int       `json:"status,omitempty"`
	AgentID string    `json:"agent_id,omitempty"`
	At      time.Time `json:"at"`
}

// party is the customer's side of the call.
func (c Call) party() IdentityView {
	if c.Direction == "outbound" {
		return c.To
	}
	return c.From
}

// ApplyCall records what an omni.desk.call.ringing or .updated says of a call. Times and
// details keep the first value the desk saw; the state moves forward only (ringing, answered,
// then ended or missed), so a late or redelivered event does not bring an ended call back. A
// transfer outcome replaces the call's only when it is later (its "at"); a final transcript
// state (complete, partial, none) is never replaced.
// With ringing set, the conversation and the customer it carries are applied first (the screen
// pop needs them even if their own events were before the log's horizon).
func (s *Store) ApplyCall(ctx context.Context, seq uint64, c Call, conv *ConversationView, cust *CustomerView) error {
	party, err := json.Marshal(c.party())
	if err != nil {
		return err
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if conv != nil {
			if err := upsertConversation(ctx, tx, seq, *conv); err != nil {
				return err
			}
		}
		if cust != nil {
			if err := upsertCustomer(ctx, tx, seq, *cust); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO desk.calls AS c (call_id, conversation_id, customer_id, direction, state, party, started_at,
				answered_at, ended_at, duration_ms, talk_ms, hangup_side, reason, recording_url, at, transfer, transcript)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
			ON CONFLICT (call_id) DO UPDATE SET
				state = CASE WHEN c.state IN ('ended', 'missed') THEN c.state
					WHEN EXCLUDED.state = 'ringing' THEN c.state ELSE EXCLUDED.state END,
				started_at = coalesce(c.started_at, EXCLUDED.started_at), answered_at = coalesce(c.answered_at, EXCLUDED.answered_at),
				ended_at = coalesce(c.ended_at, EXCLUDED.ended_at), duration_ms = coalesce(c.duration_ms, EXCLUDED.duration_ms),
				talk_ms = coalesce(c.talk_ms, EXCLUDED.talk_ms), hangup_side = coalesce(c.hangup_side, EXCLUDED.hangup_side),
				reason = coalesce(c.reason, EXCLUDED.reason), recording_url = coalesce(c.recording_url, EXCLUDED.recording_url),
				transfer = CASE WHEN EXCLUDED.transfer IS NOT NULL AND (c.transfer IS NULL
					OR (EXCLUDED.transfer->>'at')::timestamptz >= (c.transfer->>'at')::timestamptz) THEN EXCLUDED.transfer ELSE c.transfer END,
				transcript = CASE WHEN c.transcript IN ('complete', 'partial', 'none') THEN c.transcript
					ELSE coalesce(EXCLUDED.transcript, c.transcript) END`,
			c.CallID, c.ConversationID, c.CustomerID, c.Direction, c.State, party, c.StartedAt, c.AnsweredAt, c.EndedAt,
			c.DurationMS, c.TalkMS, nullable(c.HangupSide), nullable(c.Reason), nullable(c.RecordingURL), c.At, c.Transfer, nullable(c.Transcript))
		return err
	})
}

// CallRow is a call on a timeline: the customer's side (masked) as Party.
type CallRow struct {
	CallID    string          `json:"call_id"`
	Direction string          `json:"direction"`
	State     string          `json:"state"`
	Party     json.RawMessage `json:"party"`
	At        time.Time       `json:"at"`
	CallDetails
}

// RecordingURL returns the recording of call id ("" when the call has none or is unknown).
func (s *Store) RecordingURL(ctx context.Context, id string) (string, error) {
	var u string
	err := s.pool.QueryRow(ctx, `SELECT coalesce(recording_url, '') FROM desk.calls WHERE call_id = $1`, id).Scan(&u)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return u, err
}

// Calls returns a conversation's calls, oldest first.
func (s *Store) Calls(ctx context.Context, conversationID string) ([]CallRow, error) {
	rows, err := s.pool.Query(ctx, `SELECT call_id, direction, state, party, started_at, answered_at, ended_at, duration_ms, talk_ms,
			coalesce(hangup_side, ''), coalesce(reason, ''), coalesce(recording_url, ''), coalesce(started_at, at), transfer,
			coalesce(transcript, '')
		FROM desk.calls WHERE conversation_id::text = $1 ORDER BY coalesce(started_at, at), call_id`, conversationID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (CallRow, error) {
		var c CallRow
		return c, r.Scan(&c.CallID, &c.Direction, &c.State, &c.Party, &c.StartedAt, &c.AnsweredAt, &c.EndedAt, &c.DurationMS, &c.TalkMS,
			&c.HangupSide, &c.Reason, &c.RecordingURL, &c.At, &c.Transfer, &c.Transcript)
	})
}

// CallState is where a call is and which conversation it is on.
type CallState struct {
	CallID         string `json:"call_id"`
	ConversationID string `json:"conversation_id"`
	State          string `json:"state"`
}

// Live says whether the call is still up (ringing or answered).
func (c CallState) Live() bool { return c.State == "ringing" || c.State == "answered" }

// GetCall returns call id's state; ErrNotFound when the desk never saw the call.
func (s *Store) GetCall(ctx context.Context, id string) (CallState, error) {
	c := CallState{CallID: id}
	err := s.pool.QueryRow(ctx, `SELECT conversation_id::text, state FROM desk.calls WHERE call_id = $1`, id).Scan(&c.ConversationID, &c.State)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, fmt.Errorf("call %s: %w", id, ErrNotFound)
	}
	return c, err
}
