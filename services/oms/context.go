package oms

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/omnibus-dev/omnibus/pkg/bus"
)

// ContextBucket is the JetStream key-value bucket where the connector remembers, per
// conversation, the orders looked up in it, so that the conversation's service record is archived
// on the right order when it closes. Keys are conversation ids; entries expire after
// OMS_CONTEXT_TTL. Any replica of the connector reads what another wrote.
const ContextBucket = "OMNI_OMS_CONTEXT"

// convContext is what the connector remembers about a conversation.
type convContext struct {
	CustomerID string `json:"customer_id,omitempty"`
	// Pinned is the order the agent looked up by number (the most recent such lookup).
	Pinned string `json:"pinned,omitempty"`
	// Orders are the orders of the latest lookup by phone, newest first.
	Orders []string `json:"orders,omitempty"`
	// Summary is the summary of the conversation's latest close the connector heard of
	// (omni.tool.ai.summary.completed).
	Summary *savedSummary `json:"summary,omitempty"`
	// Archived is set once the OMS has the conversation's service record.
	Archived *archived `json:"archived,omitempty"`
	At       time.Time `json:"at"`
}

// savedSummary is a conversation's summary as the connector keeps it until it is on the record.
type savedSummary struct {
	EventID      string    `json:"event_id"`
	ClosedAt     time.Time `json:"closed_at"`
	Text         string    `json:"text"`
	Source       string    `json:"source"`
	BusinessType string    `json:"business_type,omitempty"`
}

// replaces reports whether s replaces old (nil: none): it summarises a later close, or the same
// close with a greater event id — the unifier's rule, so both keep the same summary.
func (s savedSummary) replaces(old *savedSummary) bool {
	if old == nil {
		return true
	}
	if !s.ClosedAt.Equal(old.ClosedAt) {
		return s.ClosedAt.After(old.ClosedAt)
	}
	return s.EventID > old.EventID
}

// archived says the OMS has the conversation's service record.
type archived struct {
	RecordID string `json:"record_id"`
	// Included is the event id of the summary the record itself carries ("" for none, or when
	// the OMS answered with a record written earlier): any other summary goes on as a remark.
	Included string    `json:"included,omitempty"`
	At       time.Time `json:"at"`
}

// Order is the order a conversation's record belongs on: the one looked up by number, else the
// newest of the buyer's orders; "" when no order was seen.
func (c convContext) Order() string {
	if c.Pinned != "" {
		return c.Pinned
	}
	if len(c.Orders) > 0 {
		return c.Orders[0]
	}
	return ""
}

type contextStore struct{ kv jetstream.KeyValue }

func openContextStore(ctx context.Context, kvs bus.KeyValues, ttl time.Duration, replicas int) (*contextStore, error) {
	kv, err := kvs.KeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      ContextBucket,
		Description: "oms connector: orders looked up per conversation, for archiving its service record on close",
		History:     1,
		TTL:         ttl,
		Replicas:    replicas,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("oms context bucket %s: %w", ContextBucket, err)
	}
	return &contextStore{kv: kv}, nil
}

// get returns the context of a conversation; ok is false when none is stored.
func (s *contextStore) get(ctx context.Context, conv string) (c convContext, ok bool, err error) {
	e, err := s.kv.Get(ctx, conv)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return c, false, nil
	}
	if err != nil {
		return c, false, err
	}
	if err := json.Unmarshal(e.Value(), &c); err != nil {
		return c, false, fmt.Errorf("oms context of %s: %w", conv, err)
	}
	return c, true, nil
}

// update applies f to the context of a conversation with compare-and-set, retrying on a
// concurrent write, and returns the context as stored after it. Two updates of one conversation
// are serialised by the compare-and-set: the second sees what the first wrote.
func (s *contextStore) update(ctx context.Context, conv string, f func(*convContext)) (convContext, error) {
	for range 5 {
		var c convContext
		var rev uint64
		e, err := s.kv.Get(ctx, conv)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return c, err
		default:
			rev = e.Revision()
			if err := json.Unmarshal(e.Value(), &c); err != nil {
				c = convContext{} // unreadable: start over
			}
		}
		before, _ := json.Marshal(c)
		f(&c)
		if after, _ := json.Marshal(c); bytes.Equal(before, after) && rev != 0 {
			return c, nil // nothing new
		}
		c.At = time.Now().UTC()
		b, _ := json.Marshal(c)
		if rev == 0 {
			_, err = s.kv.Create(ctx, conv, b)
		} else {
			_, err = s.kv.Update(ctx, conv, b, rev)
		}
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !isWrongSequence(err) {
			return c, err
		}
	}
	return convContext{}, fmt.Errorf("oms context of %s: too many concurrent updates", conv)
}

func isWrongSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}
