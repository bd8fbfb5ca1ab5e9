package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/omnibus-dev/omnibus/pkg/identity"
	"github.com/omnibus-dev/omnibus/pkg/pii"
)

// The projection writes. Each is idempotent: rows keyed by event id are inserted once, and the
// headers of conversations and customers carry the OMNI_DESK sequence (seq) of the last event
// applied to them, so an older event delivered late never overwrites a newer state.

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func jsonOr(raw json.RawMessage, def string) []byte {
	if len(raw) == 0 || string(raw) == "null" {
		return []byte(def)
	}
	return raw
}

func upsertConversation(ctx context.Context, tx pgx.Tx, seq uint64, c ConversationView) error {
	_, err := tx.Exec(ctx, `INSERT INTO desk.conversations AS c
			(id, customer_id, status, channels, opened_at, closed_at, close_reason, last_event_at, previous_id, seq)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (id) DO UPDATE SET customer_id = EXCLUDED.customer_id, status = EXCLUDED.status,
			channels = EXCLUDED.channels, opened_at = EXCLUDED.opened_at, closed_at = EXCLUDED.closed_at,
			close_reason = EXCLUDED.close_reason, last_event_at = EXCLUDED.last_event_at,
			previous_id = EXCLUDED.previous_id, seq = EXCLUDED.seq
		WHERE c.seq < EXCLUDED.seq`,
		c.ID, c.CustomerID, c.Status, c.Channels, c.OpenedAt, c.ClosedAt, nullable(c.CloseReason), c.LastEventAt,
		nullable(c.PreviousID), int64(seq))
	return err
}

func upsertCustomer(ctx context.Context, tx pgx.Tx, seq uint64, c CustomerView) error {
	ids, err := json.Marshal(c.Identities)
	if err != nil {
		return err
	}
	if c.Identities == nil {
		ids = []byte("[]")
	}
	_, err = tx.Exec(ctx, `INSERT INTO desk.customers AS c (id, display_name, identities, profile, profile_sources, created_at, seq)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (id) DO UPDATE SET display_name = coalesce(EXCLUDED.display_name, c.display_name),
			identities = EXCLUDED.identities, profile = EXCLUDED.profile, profile_sources = EXCLUDED.profile_sources,
			created_at = EXCLUDED.created_at, seq = EXCLUDED.seq
		WHERE c.seq < EXCLUDED.seq`,
		c.ID, nullable(c.DisplayName), ids, jsonOr(c.Profile, "{}"), jsonOr(c.ProfileSources, "{}"), c.CreatedAt, int64(seq))
	return err
}

// ensureCustomer inserts a placeholder for a customer the desk has not seen yet (its
// customer.updated comes later or was before the log's horizon).
func ensureCustomer(ctx context.Context, tx pgx.Tx, id, name string, at time.Time) error {
	_, err := tx.Exec(ctx, `INSERT INTO desk.customers (id, display_name, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (id) DO UPDATE SET display_name = coalesce(desk.customers.display_name, EXCLUDED.display_name)`,
		id, nullable(name), at)
	return err
}

// ApplyConversation applies omni.desk.conversation.opened/updated/closed.
func (s *Store) ApplyConversation(ctx context.Context, seq uint64, c ConversationView) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if err := ensureCustomer(ctx, tx, c.CustomerID, "", c.OpenedAt); err != nil {
			return err
		}
		if err := upsertConversation(ctx, tx, seq, c); err != nil {
			return err
		}
		return setSummary(ctx, tx, c)
	})
}

// setSummary keeps the summary c carries, if any, unless the conversation has the summary of a
// later close (or of the same close from a greater event id), whatever the event's seq: the
// events without a summary leave it be.
func setSummary(ctx context.Context, tx pgx.Tx, c ConversationView) error {
	if c.Summary == nil {
		return nil
	}
	doc, err := json.Marshal(c.Summary)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE desk.conversations SET summary = $2
		WHERE id = $1 AND (summary IS NULL OR ((summary->>'closed_at')::timestamptz, summary->>'event_id') <= ($3::timestamptz, $4::text))`,
		c.ID, doc, c.Summary.ClosedAt, c.Summary.EventID)
	return err
}

// ApplyCustomer applies omni.desk.customer.updated.
func (s *Store) ApplyCustomer(ctx context.Context, seq uint64, c CustomerView) error {
	return s.inTx(ctx, func(tx pgx.Tx) error { return upsertCustomer(ctx, tx, seq, c) })
}

// Preview renders a message body as one line for the inbox.
func Preview(body json.RawMessage) string {
	var b struct {
		Type     string `json:"type"`
		Text     string `json:"text"`
		FileName string `json:"file_name"`
		Link     *struct {
			Title string `json:"title"`
			URL   string `json:"url"`
		} `json:"link"`
		Event *struct {
			Name string `json:"name"`
		} `json:"event"`
	}
	if json.Unmarshal(body, &b) != nil {
		return ""
	}
	switch {
	case b.Type == "text":
		return truncate(strings.Join(strings.Fields(b.Text), " "), 140)
	case b.Type == "link" && b.Link != nil:
		return truncate("["+b.Type+"] "+firstNonEmpty(b.Link.Title, b.Link.URL), 140)
	case b.Type == "event" && b.Event != nil:
		return "[event] " + b.Event.Name
	case b.FileName != "":
		return truncate("["+b.Type+"] "+b.FileName, 140)
	}
	return "[" + b.Type + "]"
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// ApplyMessageAdded applies omni.desk.message.added. language is the language detected in an
// inbound text ("" when unknown). It reports whether the message was new to the desk.
func (s *Store) ApplyMessageAdded(ctx context.Context, seq uint64, m MessageAdded, language string) (bool, error) {
	msg := m.Message
	party := msg.From
	if msg.Direction == "outbound" {
		party = msg.To
	}
	pj, err := json.Marshal(party)
	if err != nil {
		return false, err
	}
	var isNew bool
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if err := ensureCustomer(ctx, tx, m.Customer.ID, m.Customer.DisplayName, m.Conversation.OpenedAt); err != nil {
			return err
		}
		if err := upsertConversation(ctx, tx, seq, m.Conversation); err != nil {
			return err
		}
		// An outbound message the desk sent itself is already there as pending: the unifier's
		// record completes it (the pending row counted as the reply already).
		var inserted bool
		err := tx.QueryRow(ctx, `INSERT INTO desk.messages AS m (event_id, conversation_id, customer_id, channel, direction,
				party, body, sent_at, status, status_at, display_name)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8, $10)
			ON CONFLICT (event_id) DO UPDATE SET party = EXCLUDED.party, conversation_id = EXCLUDED.conversation_id,
				customer_id = EXCLUDED.customer_id,
				status = CASE WHEN m.status = 'pending' THEN EXCLUDED.status ELSE m.status END,
				status_at = CASE WHEN m.status = 'pending' THEN EXCLUDED.status_at ELSE m.status_at END
			RETURNING (xmax = 0)`,
			msg.EventID, msg.ConversationID, msg.CustomerID, msg.Channel, msg.Direction, pj, []byte(msg.Body), msg.SentAt,
			nullable(msg.Status), nullable(m.Customer.DisplayName)).Scan(&inserted)
		if err != nil {
			return err
		}
		isNew = inserted
		if !inserted {
			return nil
		}
		preview := Preview(msg.Body)
		if msg.Direction == "inbound" {
			_, err = tx.Exec(ctx, `UPDATE desk.conversations SET unread = unread + 1,
					waiting_since = coalesce(waiting_since, $2),
					current_channel = CASE WHEN last_message_at IS NULL OR last_message_at <= $2 OR current_channel IS NULL THEN $3 ELSE current_channel END,
					language = CASE WHEN $4 <> '' AND (last_message_at IS NULL OR last_message_at <= $2) THEN $4 ELSE language END,
					last_preview = CASE WHEN last_message_at IS NULL OR last_message_at <= $2 THEN $5 ELSE last_preview END,
					last_direction = CASE WHEN last_message_at IS NULL OR last_message_at <= $2 THEN 'inbound' ELSE last_direction END,
					last_message_at = greatest(last_message_at, $2)
				WHERE id = $1`, msg.ConversationID, msg.SentAt, msg.Channel, language, preview)
		} else {
			_, err = tx.Exec(ctx, `UPDATE desk.conversations SET
					waiting_since = CASE WHEN waiting_since IS NOT NULL AND waiting_since <= $2 THEN NULL ELSE waiting_since END,
					unread = CASE WHEN waiting_since IS NOT NULL AND waiting_since <= $2 THEN 0 ELSE unread END,
					last_preview = CASE WHEN last_message_at IS NULL OR last_message_at <= $2 THEN $3 ELSE last_preview END,
					last_direction = CASE WHEN last_message_at IS NULL OR last_message_at <= $2 THEN 'outbound' ELSE last_direction END,
					last_message_at = greatest(last_message_at, $2)
				WHERE id = $1`, msg.ConversationID, msg.SentAt, preview)
		}
		return err
	})
	return isNew, err
}

// statusRank orders delivery statuses so a late "sent" never overwrites "read".
const statusRank = `(CASE %s WHEN 'pending' THEN 0 WHEN 'accepted' THEN 1 WHEN 'sent' THEN 2 WHEN 'delivered' THEN 3
	WHEN 'read' THEN 4 WHEN 'failed' THEN 5 ELSE 0 END)`

// ApplyMessageUpdated applies omni.desk.message.updated. It reports whether the desk knew the
// message (its message.added comes first in the log).
func (s *Store) ApplyMessageUpdated(ctx context.Context, u MessageUpdated) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE desk.messages SET status = $2, status_at = $3, error_code = $4, error = $5
		WHERE event_id = $1 AND `+fmt.Sprintf(statusRank, "coalesce(status, 'pending')")+` <= `+fmt.Sprintf(statusRank, "$2::text"),
		u.MessageID, u.Status, u.At, nullable(u.ErrorCode), nullable(u.Error))
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() > 0, nil
}

// ApplyMerged applies omni.desk.customer.merged the way the unifier applied the merge: from's
// conversations move to into, and when both had an open conversation, from's messages join
// into's and from's conversation becomes merged. What moved is recorded for the unmerge.
func (s *Store) ApplyMerged(ctx context.Context, seq uint64, m CustomerMerged) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM desk.merges WHERE merge_id = $1)`, m.MergeID).Scan(&exists); err != nil || exists {
			return err
		}
		var fromOpen, intoOpen *string
		if err := tx.QueryRow(ctx, `SELECT
				(SELECT id::text FROM desk.conversations WHERE customer_id = $1 AND status = 'open' ORDER BY opened_at DESC LIMIT 1),
				(SELECT id::text FROM desk.conversations WHERE customer_id = $2 AND status = 'open' ORDER BY opened_at DESC LIMIT 1)`,
			m.FromID, m.IntoID).Scan(&fromOpen, &intoOpen); err != nil {
			return err
		}
		msgs := []string{}
		if fromOpen != nil && intoOpen != nil {
			rows, err := tx.Query(ctx, `UPDATE desk.messages SET conversation_id = $2 WHERE conversation_id = $1 RETURNING event_id`, *fromOpen, *intoOpen)
			if err != nil {
				return err
			}
			if msgs, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
				return err
			}
			// The agents' notes follow the conversation into the survivor.
			if _, err := tx.Exec(ctx, `UPDATE desk.notes SET conversation_id = $2 WHERE conversation_id = $1`, *fromOpen, *intoOpen); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE desk.conversations c SET
					channels = ARRAY(SELECT DISTINCT unnest(c.channels || f.channels)),
					last_event_at = greatest(c.last_event_at, f.last_event_at),
					unread = c.unread + f.unread,
					waiting_since = least(c.waiting_since, f.waiting_since)
				FROM desk.conversations f WHERE c.id = $2 AND f.id = $1`, *fromOpen, *intoOpen); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE desk.conversations SET status = 'merged', closed_at = $2, close_reason = 'merged',
					waiting_since = NULL, unread = 0 WHERE id = $1`, *fromOpen, m.At); err != nil {
				return err
			}
		}
		rows, err := tx.Query(ctx, `UPDATE desk.conversations SET customer_id = $2 WHERE customer_id = $1 RETURNING id::text`, m.FromID, m.IntoID)
		if err != nil {
			return err
		}
		convs, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		if convs == nil {
			convs = []string{}
		}
		for _, q := range []string{
			`UPDATE desk.messages SET customer_id = $2 WHERE customer_id = $1`,
			`UPDATE desk.tool_results SET customer_id = $2 WHERE customer_id = $1`,
			`UPDATE desk.tool_requests SET customer_id = $2 WHERE customer_id = $1`,
			`UPDATE desk.calls SET customer_id = $2 WHERE customer_id = $1`,
			`UPDATE desk.addresses SET customer_id = $2 WHERE customer_id = $1`,
		} {
			if _, err := tx.Exec(ctx, q, m.FromID, m.IntoID); err != nil {
				return err
			}
		}
		if err := ensureCustomer(ctx, tx, m.FromID, "", m.At); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE desk.customers SET merged_into = $2 WHERE id = $1`, m.FromID, m.IntoID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO desk.merges (merge_id, from_id, into_id, conversations, merged_conversation, messages, at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, m.MergeID, m.FromID, m.IntoID, convs, fromOpen, msgs, m.At); err != nil {
			return err
		}
		return upsertCustomer(ctx, tx, seq, m.Customer)
	})
}

// ApplyUnmerged applies omni.desk.customer.unmerged: what the merge moved goes back.
func (s *Store) ApplyUnmerged(ctx context.Context, seq uint64, u CustomerUnmerged) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		var (
			convs, msgs []string
			mergedConv  *string
			undone      *time.Time
		)
		err := tx.QueryRow(ctx, `SELECT conversations::text[], messages, merged_conversation::text, undone_at FROM desk.merges
			WHERE merge_id = $1 FOR UPDATE`, u.MergeID).Scan(&convs, &msgs, &mergedConv, &undone)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if err == nil && undone == nil {
			if _, err := tx.Exec(ctx, `UPDATE desk.conversations SET customer_id = $1 WHERE id::text = ANY($2)`, u.FromID, convs); err != nil {
				return err
			}
			if mergedConv != nil {
				if _, err := tx.Exec(ctx, `UPDATE desk.messages SET conversation_id = $1 WHERE event_id = ANY($2)`, *mergedConv, msgs); err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, `UPDATE desk.conversations SET status = 'open', closed_at = NULL, close_reason = NULL
					WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM desk.conversations WHERE customer_id = $2 AND status = 'open')`, *mergedConv, u.FromID); err != nil {
					return err
				}
			}
			for _, q := range []string{
				`UPDATE desk.messages SET customer_id = $1 WHERE conversation_id::text = ANY($2)`,
				`UPDATE desk.tool_results SET customer_id = $1 WHERE conversation_id::text = ANY($2)`,
				`UPDATE desk.tool_requests SET customer_id = $1 WHERE conversation_id::text = ANY($2)`,
				`UPDATE desk.calls SET customer_id = $1 WHERE conversation_id::text = ANY($2)`,
			} {
				if _, err := tx.Exec(ctx, q, u.FromID, convs); err != nil {
					return err
				}
			}
			if _, err := tx.Exec(ctx, `UPDATE desk.merges SET undone_at = $2 WHERE merge_id = $1`, u.MergeID, u.At); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE desk.customers SET merged_into = NULL WHERE id = $1`, u.FromID); err != nil {
			return err
		}
		for _, c := range u.Customers {
			if err := upsertCustomer(ctx, tx, seq, c); err != nil {
				return err
			}
		}
		return nil
	})
}

// Sentiment is the sentiment an AI tool result reported, if any.
func Sentiment(result json.RawMessage) (label string, score float64) {
	var r struct {
		Sentiment *struct {
			Label string  `json:"label"`
			Score float64 `json:"score"`
		} `json:"sentiment"`
	}
	if json.Unmarshal(result, &r) != nil || r.Sentiment == nil {
		return "", 0
	}
	return r.Sentiment.Label, r.Sentiment.Score
}

// ApplyToolResult applies omni.desk.tool.result. A sentiment in the result updates the
// conversation's sentiment; a negative one raises an alert (a later non-negative one resolves it).
func (s *Store) ApplyToolResult(ctx context.Context, r ToolResult) (bool, error) {
	var inserted bool
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO desk.tool_results (event_id, conversation_id, customer_id, tool, op, outcome, correlation_id, result, at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING`,
			r.EventID, r.ConversationID, r.CustomerID, r.Tool, r.Op, r.Outcome, nullable(r.CorrelationID), jsonOr(r.Result, "{}"), r.At)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		inserted = true
		label, score := Sentiment(r.Result)
		if label == "" {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE desk.conversations SET sentiment = $2 WHERE id = $1`, r.ConversationID, label); err != nil {
			return err
		}
		if label != "negative" {
			// Not the sentiment connector's episode alerts (detail.episode): their own cleared event ends them.
			_, err := tx.Exec(ctx, `UPDATE desk.alerts SET resolved_at = $2 WHERE kind = 'sentiment' AND conversation_id = $1 AND resolved_at IS NULL
				AND detail->>'episode' IS NULL`, r.ConversationID, r.At)
			return err
		}
		detail, _ := json.Marshal(map[string]any{"score": score, "tool": r.Tool, "op": r.Op, "customer_id": r.CustomerID})
		_, err = tx.Exec(ctx, `INSERT INTO desk.alerts (id, kind, severity, title, detail, conversation_id, at)
			VALUES ($1, 'sentiment', 'warning', 'negative sentiment', $2, $3, $4) ON CONFLICT DO NOTHING`,
			"sentiment:"+r.EventID, detail, r.ConversationID, r.At)
		return err
	})
	return inserted, err
}

// ApplyToolRequest records a tool request (the desk's own, or one seen on OMNI_TOOL).
func (s *Store) ApplyToolRequest(ctx context.Context, eventID, conversationID, customerID, tool, op, agentID string, data json.RawMessage, at time.Time) error {
	if s.sealer != nil { // kept as the log keeps it; shown concealed (toolRequests)
		sealed, err := s.sealer.Seal(data)
		if err != nil {
			return err
		}
		data = sealed
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO desk.tool_requests (event_id, conversation_id, customer_id, tool, op, agent_id, data, requested_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
		eventID, conversationID, nullable(customerID), tool, op, nullable(agentID), jsonOr(data, "{}"), at)
	return err
}

// ApplyAssignment applies omni.desk.assignment.changed. It reports whether it was new.
func (s *Store) ApplyAssignment(ctx context.Context, eventID string, a AssignmentChanged) (bool, error) {
	var inserted bool
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO desk.assignments (event_id, conversation_id, customer_id, agent_id, previous_agent_id, rule, note, by_agent, at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING`,
			eventID, a.ConversationID, a.CustomerID, a.AgentID, nullable(a.PreviousAgentID), a.Rule, nullable(a.Note), a.By, a.At)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		inserted = true
		_, err = tx.Exec(ctx, `UPDATE desk.conversations SET assignee = $2, assigned_at = $3
			WHERE id = $1 AND (assigned_at IS NULL OR assigned_at <= $3)`, a.ConversationID, a.AgentID, a.At)
		return err
	})
	return inserted, err
}

// ApplyAgent applies omni.desk.agent.updated (and the agents seeded from configuration).
func (s *Store) ApplyAgent(ctx context.Context, a Agent, at time.Time) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO desk.agents AS a (id, name, skills, languages, channels, capacity, active, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, skills = EXCLUDED.skills, languages = EXCLUDED.languages,
			channels = EXCLUDED.channels, capacity = EXCLUDED.capacity, active = EXCLUDED.active, updated_at = EXCLUDED.updated_at
		WHERE a.updated_at <= EXCLUDED.updated_at`,
		a.ID, a.Name, nonNil(a.Skills), nonNil(a.Languages), nonNil(a.Channels), a.Capacity, a.Active, at)
	return err
}

// SeedAgent inserts a from configuration unless an agent with its id exists (changes made
// through the API win over the seed).
func (s *Store) SeedAgent(ctx context.Context, a Agent) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO desk.agents (id, name, skills, languages, channels, capacity, active, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, '-infinity') ON CONFLICT (id) DO NOTHING`,
		a.ID, a.Name, nonNil(a.Skills), nonNil(a.Languages), nonNil(a.Channels), a.Capacity, a.Active)
	return err
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Address is where a reply on a channel goes: a raw identity (never shown to agents).
type Address struct {
	Kind, Value, Account string
}

// ApplyAddress records the sender identity of an inbound message (sourceEvent = its event id,
// channel set) or an identity a CRM record gave for a customer (customerID set).
func (s *Store) ApplyAddress(ctx context.Context, sourceEvent string, a Address, channel, customerID string, at time.Time) error {
	value, sealed, err := s.seal(a.Kind, a.Value)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO desk.addresses (source_event, kind, value, channel, account, customer_id, at, sealed)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
		sourceEvent, a.Kind, value, nullable(channel), nullable(a.Account), nullable(customerID), at, nullable(sealed))
	return err
}

// seal returns what desk.addresses keeps of an address: for a kind of pii.SealedKinds when the
// store seals, its identity.Indexed value and its ciphertext; else the value as it is.
func (s *Store) seal(kind, value string) (key, sealed string, err error) {
	if s.sealer == nil || !pii.SealedKinds[kind] {
		return value, "", nil
	}
	x, err := s.sealer.SealIdentity(kind, value)
	if err != nil {
		return "", "", err
	}
	return identity.Indexed(kind, x.Index, x.Masked).Value, x.Value, nil
}

// SealAddresses converts the reply addresses kept in clear (written before the store sealed)
// to the sealed form, and returns how many it converted.
func (s *Store) SealAddresses(ctx context.Context) (int, error) {
	if s.sealer == nil {
		return 0, nil
	}
	var kinds []string
	for k := range pii.SealedKinds {
		kinds = append(kinds, k)
	}
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT kind, value FROM desk.addresses WHERE kind = ANY($1) AND value NOT LIKE '~%'`, kinds)
	if err != nil {
		return 0, err
	}
	var ks, olds, news, sealed []string
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			rows.Close()
			return 0, err
		}
		key, ct, err := s.seal(k, v)
		if err != nil {
			rows.Close()
			return 0, err
		}
		ks, olds, news, sealed = append(ks, k), append(olds, v), append(news, key), append(sealed, ct)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(ks) == 0 {
		return 0, err
	}
	// Distinct spellings of one value become one key: keep one row of each.
	_, err = s.pool.Exec(ctx, `WITH m AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS m(kind, old, new, sealed)),
		moved AS (DELETE FROM desk.addresses a USING m WHERE a.kind = m.kind AND a.value = m.old
			RETURNING a.source_event, a.kind, m.new, a.channel, a.account, a.customer_id, a.at, m.sealed)
		INSERT INTO desk.addresses (source_event, kind, value, channel, account, customer_id, at, sealed)
		SELECT * FROM moved ON CONFLICT DO NOTHING`, ks, olds, news, sealed)
	if err != nil {
		return 0, err
	}
	return len(ks), nil
}

// Alert is an alert banner: negative sentiment on a conversation, or an ops alert on a route.
type Alert struct {
	ID             string          `json:"id"`
	Kind           string          `json:"kind"`
	Severity       string          `json:"severity"`
	Title          string          `json:"title"`
	Detail         json.RawMessage `json:"detail"`
	ConversationID string          `json:"conversation_id,omitempty"`
	Route          string          `json:"route,omitempty"`
	At             time.Time       `json:"at"`
	ResolvedAt     *time.Time      `json:"resolved_at,omitempty"`
}

// ApplyAlert records an alert; resolved (when non-nil) resolves the alert with a's id instead.
func (s *Store) ApplyAlert(ctx context.Context, a Alert, resolved *time.Time) error {
	if resolved != nil {
		_, err := s.pool.Exec(ctx, `UPDATE desk.alerts SET resolved_at = $2 WHERE id = $1 AND resolved_at IS NULL`, a.ID, *resolved)
		return err
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO desk.alerts (id, kind, severity, title, detail, conversation_id, route, at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
		a.ID, a.Kind, a.Severity, a.Title, jsonOr(a.Detail, "{}"), nullable(a.ConversationID), nullable(a.Route), a.At)
	return err
}

// VendorCall is one third-party call from an audit record.
type VendorCall struct {
	EventID, Vendor, Op, Outcome, Code, Breaker string
	LatencyMS                                   float64
	At                                          time.Time
}

// ApplyVendorCall records one audit record.
func (s *Store) ApplyVendorCall(ctx context.Context, c VendorCall) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO desk.vendor_calls (event_id, route, vendor, op, outcome, code, latency_ms, breaker, at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING`,
		c.EventID, c.Vendor+"."+c.Op, c.Vendor, c.Op, c.Outcome, c.Code, c.LatencyMS, c.Breaker, c.At)
	return err
}

// PruneVendorCalls deletes audit rows older than before (the ops page shows a recent window).
func (s *Store) PruneVendorCalls(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM desk.vendor_calls WHERE at < $1`, before)
	return tag.RowsAffected(), err
}

// AddPendingReply records an outbound message the desk just asked a connector to send, so it
// shows on the timeline at once; the unifier's message.added for the same id completes it.
func (s *Store) AddPendingReply(ctx context.Context, eventID, conversationID, customerID, channel, agentID string, to IdentityView, body json.RawMessage, at time.Time) error {
	pj, err := json.Marshal(to)
	if err != nil {
		return err
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO desk.messages (event_id, conversation_id, customer_id, channel, direction, party, body, sent_at, status, status_at, agent_id)
			VALUES ($1, $2, $3, $4, 'outbound', $5, $6, $7, 'pending', $7, $8) ON CONFLICT DO NOTHING`,
			eventID, conversationID, customerID, channel, pj, []byte(body), at, agentID)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE desk.conversations SET waiting_since = NULL, unread = 0, last_preview = $2,
				last_direction = 'outbound', last_message_at = greatest(last_message_at, $3) WHERE id = $1`,
			conversationID, Preview(body), at)
		return err
	})
}

// MarkRead resets a conversation's unread count.
func (s *Store) MarkRead(ctx context.Context, conversationID string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE desk.conversations SET unread = 0 WHERE id = $1`, conversationID)
	if err == nil && tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return err
}
