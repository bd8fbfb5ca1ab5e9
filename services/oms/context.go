package oms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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
	Orders []string  `json:"orders,omitempty"`
	At     time.Time `json:"at"`
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
// concurrent write.
func (s *contextStore) update(ctx context.Context, conv string, f func(*convContext)) error {
	for range 5 {
		var c convContext
		var rev uint64
		e, err := s.kv.Get(ctx, conv)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return err
		default:
			rev = e.Revision()
			if err := json.Unmarshal(e.Value(), &c); err != nil {
				c = convContext{} // unreadable: start over
			}
		}
		before := c
		before.Orders = slices.Clone(c.Orders)
		f(&c)
		if c.Pinned == before.Pinned && slices.Equal(c.Orders, before.Orders) && c.CustomerID == before.CustomerID && rev != 0 {
			return nil // nothing new
		}
		c.At = time.Now().UTC()
		b, _ := json.Marshal(c)
		if rev == 0 {
			_, err = s.kv.Create(ctx, conv, b)
		} else {
			_, err = s.kv.Update(ctx, conv, b, rev)
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !isWrongSequence(err) {
			return err
		}
	}
	return fmt.Errorf("oms context of %s: too many concurrent updates", conv)
}

func isWrongSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}
