package assist

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
)

// This file is the connector's read model of conversations: each conversation's recent text
// turns, built from omni.desk.message.added (chat messages in and out, and calls' final caller
// transcript segments, which the unifier adds as voice inbound messages) and kept in the
// JetStream KV bucket TranscriptBucket, so that any replica, after any restart, summarises and
// extracts from the same transcript. The log stays the source: a lost bucket is rebuilt by
// replaying OMNI_DESK into a new consumer.

// TranscriptBucket is the JetStream KV bucket of the transcripts, keyed by conversation id.
const TranscriptBucket = "assist_transcripts"

// Bounds of a transcript entry besides the configured turns and bytes.
const (
	maxTurnText   = 2000 // characters of one turn
	rememberSeen  = 256  // message ids remembered beyond the kept turns (dropped turns, skipped messages)
	rememberMarks = 64   // done-markers remembered (summaries, calls handled)
)

// Turn is one message of a transcript.
type Turn struct {
	// ID is the message's event_id (the omni.channel.message.received or .send.requested id).
	ID string `json:"id"`
	// Role is customer (inbound) or agent (outbound).
	Role    string    `json:"role"`
	Channel string    `json:"channel,omitempty"`
	Text    string    `json:"text"`
	At      time.Time `json:"at"`
}

// transcript is what the bucket keeps per conversation.
type transcript struct {
	CustomerID string `json:"customer_id,omitempty"`
	// Turns are the latest turns, oldest first, within the configured bounds.
	Turns []Turn `json:"turns,omitempty"`
	// Dropped counts the turns dropped by the bounds.
	Dropped int `json:"dropped,omitempty"`
	// Seen are the ids of the latest messages applied (kept or not), oldest first.
	Seen []string `json:"seen,omitempty"`
	// Marks record what was done for the conversation: summary:<closed ms>, call:<call id>,
	// close:<closed ms> (its ticket decision); oldest first.
	Marks []string `json:"marks,omitempty"`
	// Ticket is the id of the automatic ticket request published for the conversation, if any.
	Ticket string `json:"ticket,omitempty"`

	revision uint64 // of the KV entry read; 0 when there was none
}

func (t *transcript) seen(id string) bool {
	return slices.Contains(t.Seen, id) || slices.ContainsFunc(t.Turns, func(u Turn) bool { return u.ID == id })
}

func (t *transcript) marked(m string) bool { return slices.Contains(t.Marks, m) }

func (t *transcript) mark(m string) {
	if t.marked(m) {
		return
	}
	t.Marks = append(t.Marks, m)
	if n := len(t.Marks) - rememberMarks; n > 0 {
		t.Marks = slices.Delete(t.Marks, 0, n)
	}
}

// add appends u (in time order: a message that arrives late is placed by its time) and applies
// the bounds, dropping the oldest turns first.
func (t *transcript) add(u Turn, maxTurns, maxBytes int) {
	t.Seen = append(t.Seen, u.ID)
	if n := len(t.Seen) - rememberSeen; n > 0 {
		t.Seen = slices.Delete(t.Seen, 0, n)
	}
	i := len(t.Turns)
	for i > 0 && t.Turns[i-1].At.After(u.At) {
		i--
	}
	t.Turns = slices.Insert(t.Turns, i, u)
	size := 0
	for _, v := range t.Turns {
		size += len(v.Text)
	}
	for len(t.Turns) > 1 && (len(t.Turns) > maxTurns || size > maxBytes) {
		size -= len(t.Turns[0].Text)
		t.Turns = t.Turns[1:]
		t.Dropped++
	}
}

// since returns the turns at or after from (all turns when from is zero).
func (t *transcript) since(from time.Time) []Turn {
	if from.IsZero() {
		return t.Turns
	}
	i := 0
	for i < len(t.Turns) && t.Turns[i].At.Before(from) {
		i++
	}
	return t.Turns[i:]
}

type transcripts struct {
	kv       jetstream.KeyValue
	maxTurns int
	maxBytes int
}

func openTranscripts(ctx context.Context, kvs interface {
	KeyValue(context.Context, jetstream.KeyValueConfig) (jetstream.KeyValue, error)
}, cfg Config) (*transcripts, error) {
	kv, err := kvs.KeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      TranscriptBucket,
		Description: "assist connector: each conversation's recent text turns (from omni.desk.message.added) and what was done on its close",
		History:     1,
		TTL:         cfg.TranscriptTTL,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("assist transcript bucket %s: %w", TranscriptBucket, err)
	}
	return &transcripts{kv: kv, maxTurns: cfg.TranscriptMaxTurns, maxBytes: cfg.TranscriptMaxBytes}, nil
}

// keyRE is what a KV key may be; conversation ids (UUIDs) are.
var keyRE = regexp.MustCompile(`^[-/_=.a-zA-Z0-9]{1,256}$`)

var errTranscript = errors.New("transcript")

// get returns a conversation's transcript, empty when none is stored.
func (s *transcripts) get(ctx context.Context, conv string) (transcript, error) {
	entry, err := s.kv.Get(ctx, conv)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return transcript{}, nil
	}
	if err != nil {
		return transcript{}, fmt.Errorf("%w of %s: %w", errTranscript, conv, err)
	}
	var t transcript
	if err := json.Unmarshal(entry.Value(), &t); err != nil {
		t = transcript{} // unreadable: start afresh rather than block the conversation
	}
	t.revision = entry.Revision()
	return t, nil
}

// update applies f to a conversation's transcript with compare-and-set, reading again after a
// concurrent write (another replica, or this connector's other consumers). f returns false to
// write nothing.
func (s *transcripts) update(ctx context.Context, conv string, f func(*transcript) bool) error {
	var err error
	for range 8 {
		var t transcript
		if t, err = s.get(ctx, conv); err != nil {
			return err
		}
		if !f(&t) {
			return nil
		}
		var b []byte
		if b, err = json.Marshal(t); err != nil {
			return bus.Permanent(err)
		}
		if t.revision == 0 {
			_, err = s.kv.Create(ctx, conv, b)
		} else {
			_, err = s.kv.Update(ctx, conv, b, t.revision)
		}
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("%w of %s: %w", errTranscript, conv, err)
}

// messageAdded is the part of omni.desk.message.added the read model keeps.
type messageAdded struct {
	Message struct {
		EventID        string    `json:"event_id"`
		ConversationID string    `json:"conversation_id"`
		CustomerID     string    `json:"customer_id"`
		Channel        string    `json:"channel"`
		Direction      string    `json:"direction"`
		SentAt         time.Time `json:"sent_at"`
		Body           struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"body"`
	} `json:"message"`
}

// HandleMessage applies one omni.desk.message.added delivery to its conversation's transcript:
// a text message is appended once (by its event_id); others are remembered as seen only.
func (c *Connector) HandleMessage(ctx context.Context, d bus.Delivery) error {
	var m messageAdded
	if err := event.DecodeData(d.Event, &m); err != nil {
		return bus.Permanent(err)
	}
	msg := m.Message
	text := strings.TrimSpace(msg.Body.Text)
	if msg.Body.Type != "text" || text == "" {
		return nil
	}
	if msg.EventID == "" || !keyRE.MatchString(msg.ConversationID) {
		return bus.Permanent(fmt.Errorf("message.added %s: no message id or conversation id %q", d.Event.ID(), msg.ConversationID))
	}
	role := "customer"
	if msg.Direction == "outbound" {
		role = "agent"
	}
	if !utf8.ValidString(text) {
		text = strings.ToValidUTF8(text, "\uFFFD")
	}
	u := Turn{ID: msg.EventID, Role: role, Channel: msg.Channel, Text: truncate(text, maxTurnText), At: msg.SentAt}
	if u.At.IsZero() {
		u.At = d.Published
	}
	return c.transcripts.update(ctx, msg.ConversationID, func(t *transcript) bool {
		if t.seen(u.ID) {
			return false // a redelivery, or a replay of a message already applied
		}
		if msg.CustomerID != "" {
			t.CustomerID = msg.CustomerID
		}
		t.add(u, c.transcripts.maxTurns, c.transcripts.maxBytes)
		return true
	})
}

// transcriptConsumer is the durable consumer of omni.desk.message.added.
const transcriptConsumer = "assist-transcript"

// errUnsettled: the transcript consumer has not yet applied every message stored before a close.
var errUnsettled = errors.New("the transcript has not caught up with the event yet")

// settled reports whether the transcript consumer has applied every omni.desk.message.added
// stored in d's stream before d — the messages of a conversation come before its close, and a
// call's final segments before its end, in the log, but are applied by another consumer.
func (c *Connector) settled(ctx context.Context, d bus.Delivery) (bool, error) {
	if c.rt.Bus == nil || d.Stream == "" {
		return true, nil
	}
	cons, err := c.rt.Bus.JetStream().Consumer(ctx, d.Stream, transcriptConsumer)
	if err != nil {
		return false, err
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return false, err
	}
	return info.AckFloor.Stream >= d.StreamSeq ||
		(info.NumAckPending == 0 && (info.NumPending == 0 || info.Delivered.Stream >= d.StreamSeq)), nil
}

// await returns nil when d may be handled: the transcript has caught up with it, or it has
// waited ASSIST_SETTLE_DELIVERIES deliveries; otherwise an error that redelivers d in 100 ms.
func (c *Connector) await(ctx context.Context, d bus.Delivery) error {
	ok, err := c.settled(ctx, d)
	if ok {
		return nil
	}
	if d.NumDelivered >= uint64(c.cfg.SettleDeliveries) {
		c.rt.Log.Warn("handling with the transcript as it is: it has not caught up", "event", d.Event.ID(), "type", d.Event.Type(), "err", err)
		return nil
	}
	return bus.RetryAfter(errors.Join(errUnsettled, err), 100*time.Millisecond)
}
