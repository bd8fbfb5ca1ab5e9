package connector

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/webhook"
)

// Seen remembers the ids of the events a connector's webhook stored, for longer than
// JetStream's duplicate window (2 minutes): a vendor that retries a push later (a lost answer, a
// retry schedule of hours) is acknowledged again without the message being stored twice. A
// connector derives its event ids from the vendor's message ids, so the id to look up is known
// before the event is built. Ids are kept in a KV bucket the connector declares with
// Runtime.Seen, key m.<40 hex of SHA-256 of the event id> (ids may hold characters keys may
// not), until the bucket's TTL.
//
// A webhook checks Stored in Decode (before its other effects) and calls MarkPublished in
// Respond, once JetStream stored the events: an id is never marked for an event not stored.
type Seen struct {
	kv jetstream.KeyValue
}

// seenTimeout bounds one Seen operation when the caller's context has no earlier deadline.
const seenTimeout = time.Second

// Seen declares the connector's seen-ids bucket: TTL how long an id is remembered (beyond the
// vendor's retries), replicas as the connector's other buckets.
func (rt *Runtime) Seen(ctx context.Context, bucket string, ttl time.Duration, replicas int) (*Seen, error) {
	kv, err := rt.KeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: rt.Spec.Name + ": the vendor message ids stored recently, so that late retries are stored once",
		History:     1,
		TTL:         ttl,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("seen bucket %s: %w", bucket, err)
	}
	return &Seen{kv: kv}, nil
}

// SeenKey is the bucket key of an event id.
func SeenKey(id string) string {
	h := sha256.Sum256([]byte(id))
	return "m." + hex.EncodeToString(h[:20])
}

// Stored reports whether the event id was marked within the bucket's TTL. A bucket that does not answer
// is an error wrapping webhook.ErrUnavailable: the vendor gets a 503 and retries.
func (s *Seen) Stored(ctx context.Context, id string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, seenTimeout)
	defer cancel()
	_, err := s.kv.Get(ctx, SeenKey(id))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return false, nil
	}
	return false, fmt.Errorf("%w: seen bucket: %w", webhook.ErrUnavailable, err)
}

// MarkPublished notes the ids of published events as stored. Its error only means a late
// retry of them may be published again, under the same event id (JetStream's duplicate window
// and the consumers' idempotence still apply): log it, do not fail the answer.
func (s *Seen) MarkPublished(ctx context.Context, published []bus.Outgoing) error {
	ctx, cancel := context.WithTimeout(ctx, seenTimeout)
	defer cancel()
	var errs []error
	for _, o := range published {
		if _, err := s.kv.Put(ctx, SeenKey(o.Event.ID()), nil); err != nil {
			errs = append(errs, fmt.Errorf("mark %q: %w", o.Event.ID(), err))
		}
	}
	return errors.Join(errs...)
}
