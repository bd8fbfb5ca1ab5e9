package webchat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/omnibus-dev/omnibus/pkg/bus"
)

// The visitor log: every visitor's messages, both ways, in one JetStream stream owned by the
// connector, one subject per visitor (webchat.log.<visitor>). The stream sequence of an entry
// is its seq in the widget protocol: it grows along each visitor's log (not contiguously, the
// stream is shared), so a widget resumes with "since" = the last seq it saw and drops any seq it
// already has. Any connector replica can serve any visitor: sockets follow the log through an
// ordered consumer, and outbound commands append to it. The stream keeps WEBCHAT_HISTORY
// entries per visitor for WEBCHAT_HISTORY_TTL.
//
// Receipts (the widget saying "agent messages up to seq N reached me / were read") advance two
// cursors per visitor in a KV bucket, with compare-and-set, so that every delivered/read status
// is published once however many tabs, devices and replicas report it.
const (
	LogStream        = "WEBCHAT_LOG"
	logSubjectPrefix = "webchat.log."
	CursorBucket     = "webchat_visitors"
	// logDuplicates is the log's duplicate window: a resend of the same client message (or a
	// redelivered send command) within it is stored once.
	logDuplicates = 15 * time.Minute
)

// Entry authors.
const (
	fromVisitor = "visitor"
	fromAgent   = "agent"
)

// entry is one message of a visitor's log, as stored.
type entry struct {
	From    string          `json:"from"` // visitor | agent
	ID      string          `json:"id"`   // the event id: the received event, or the send command
	CID     string          `json:"cid,omitempty"`
	Message json.RawMessage `json:"message"`
	At      time.Time       `json:"at"`
	// Agent messages: what a status event repeats.
	To             *Identity `json:"to,omitempty"`
	ConversationID string    `json:"conversation_id,omitempty"`
}

type logged struct {
	Seq uint64
	entry
}

// frame is the entry as the widget sees it (no internal ids).
func (l logged) frame() ServerFrame {
	at := l.At
	f := ServerFrame{Type: FrameMsg, Seq: l.Seq, From: l.From, Message: l.Message, At: &at}
	if l.From == fromVisitor {
		f.CID = l.CID
	}
	return f
}

type visitorLog struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	kv     jetstream.KeyValue
}

func logSubject(visitor string) string { return logSubjectPrefix + visitor }

// openLog creates or updates the connector's stream on js and declares its KV bucket on kvs (the
// connector's Runtime); both are idempotent: every replica does it at start.
func openLog(ctx context.Context, js jetstream.JetStream, kvs bus.KeyValues, cfg *Config) (*visitorLog, error) {
	dup := min(logDuplicates, cfg.HistoryTTL)
	st, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              LogStream,
		Description:       "web chat: each visitor's ordered message log, for reconnects and page reloads",
		Subjects:          []string{logSubjectPrefix + "*"},
		Retention:         jetstream.LimitsPolicy,
		MaxMsgsPerSubject: int64(cfg.History),
		MaxAge:            cfg.HistoryTTL,
		Storage:           jetstream.FileStorage,
		Replicas:          cfg.Replicas,
		Duplicates:        dup,
		Discard:           jetstream.DiscardOld,
	})
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", LogStream, err)
	}
	kv, err := kvs.KeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      CursorBucket,
		Description: "web chat: per visitor, the last agent message seq reported delivered and read",
		History:     1,
		TTL:         cfg.VisitorTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("kv %s: %w", CursorBucket, err)
	}
	return &visitorLog{js: js, stream: st, kv: kv}, nil
}

// append stores e at the end of visitor's log and returns its seq. e.ID is the message id:
// appending the same id again within the duplicate window returns the first seq.
func (l *visitorLog) append(ctx context.Context, visitor string, e entry) (uint64, error) {
	data, err := json.Marshal(e)
	if err != nil {
		return 0, err
	}
	ack, err := l.js.Publish(ctx, logSubject(visitor), data, jetstream.WithMsgID(e.ID), jetstream.WithExpectStream(LogStream))
	if err != nil {
		return 0, fmt.Errorf("append to %s: %w", logSubject(visitor), err)
	}
	return ack.Sequence, nil
}

func decodeEntry(seq uint64, data []byte) (logged, error) {
	var e entry
	if err := json.Unmarshal(data, &e); err != nil {
		return logged{}, fmt.Errorf("log entry %d: %w", seq, err)
	}
	return logged{Seq: seq, entry: e}, nil
}

// read returns up to limit entries of visitor's log with from <= seq <= to (to 0: no bound).
func (l *visitorLog) read(ctx context.Context, visitor string, from, to uint64, limit int) ([]logged, error) {
	var out []logged
	subj := logSubject(visitor)
	for seq := max(from, 1); len(out) < limit && (to == 0 || seq <= to); {
		m, err := l.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subj))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return out, fmt.Errorf("read %s from %d: %w", subj, seq, err)
		}
		if to != 0 && m.Sequence > to {
			break
		}
		seq = m.Sequence + 1
		lg, err := decodeEntry(m.Sequence, m.Data)
		if err != nil {
			continue // not ours to show: written by something else on our subject
		}
		out = append(out, lg)
	}
	return out, nil
}

// lastSeq is the stream's last sequence (every visitor's seqs are below it).
func (l *visitorLog) lastSeq(ctx context.Context) (uint64, error) {
	info, err := l.stream.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.LastSeq, nil
}

// follow calls fn, in order, for every entry of visitor's log after since, now and as they are
// appended, until the returned handle is stopped. fn runs on one goroutine at a time.
func (l *visitorLog) follow(ctx context.Context, visitor string, since uint64, fn func(logged)) (jetstream.ConsumeContext, error) {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{logSubject(visitor)}, InactiveThreshold: time.Minute}
	if since > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, since+1
	}
	cons, err := l.js.OrderedConsumer(ctx, LogStream, cfg)
	if err != nil {
		return nil, fmt.Errorf("follow %s: %w", logSubject(visitor), err)
	}
	return cons.Consume(func(m jetstream.Msg) {
		md, err := m.Metadata()
		if err != nil {
			return
		}
		if lg, err := decodeEntry(md.Sequence.Stream, m.Data()); err == nil {
			fn(lg)
		}
	}, jetstream.PullMaxMessages(64))
}

// cursors are a visitor's receipt positions.
type cursors struct {
	Delivered uint64 `json:"delivered"`
	Read      uint64 `json:"read"`
}

// advance moves visitor's delivered or read cursor to upTo. Before it moves, publish is called
// with the seq range (from, upTo] the move covers (read implies delivered: a delivered receipt
// never covers what is already read); if publish fails the cursor stays. Concurrent receipts of
// one visitor are serialised by compare-and-set; a range may then be published twice, which
// deterministic event ids make harmless.
func (l *visitorLog) advance(ctx context.Context, visitor, status string, upTo uint64, publish func(from, to uint64) error) error {
	for range 8 {
		var cur cursors
		var rev uint64
		kve, err := l.kv.Get(ctx, visitor)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return fmt.Errorf("cursors of %s: %w", visitor, err)
		default:
			rev = kve.Revision()
			if err := json.Unmarshal(kve.Value(), &cur); err != nil {
				return fmt.Errorf("cursors of %s: %w", visitor, err)
			}
		}
		from := max(cur.Delivered, cur.Read)
		if status == "read" {
			from = cur.Read
		}
		if upTo <= from {
			return nil
		}
		if err := publish(from, upTo); err != nil {
			return err
		}
		next := cur
		next.Delivered = max(cur.Delivered, upTo)
		if status == "read" {
			next.Read = upTo
		}
		data, _ := json.Marshal(next)
		if rev == 0 {
			_, err = l.kv.Create(ctx, visitor, data)
		} else {
			_, err = l.kv.Update(ctx, visitor, data, rev)
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("cursors of %s: %w", visitor, err)
		}
		// Another receipt moved the cursors meanwhile: read them again.
	}
	return fmt.Errorf("cursors of %s: too many concurrent updates", visitor)
}
