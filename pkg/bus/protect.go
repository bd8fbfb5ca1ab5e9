package bus

import (
	"fmt"

	"github.com/omnibus-dev/omnibus/pkg/event"
)

// DataProtector seals personal data in events on their way into the log and opens it for the
// handlers of a process that holds the keys; pkg/pii's Events is the one omnibus uses. Seal runs
// after the producer validated the clear event, Open before the consumer validates it; the
// schemas accept both forms, so a consumer without the keys (no protector) validates and handles
// the sealed form.
type DataProtector interface {
	// Seal returns data with its personal fields sealed (data itself if it holds none).
	Seal(data []byte) ([]byte, error)
	// Open returns data with its sealed fields opened (data itself if it holds none).
	Open(data []byte) ([]byte, error)
	// SealPartitionKey returns the partition key with a personal value replaced by its blind
	// index.
	SealPartitionKey(key string) string
}

// WithDataProtector seals personal data on publish (Publish, PublishBatch, DeadLetterEvent) and
// opens it on consume (Subscribe, SubscribeBatch, Replay). nil (the default) publishes events as
// they are and hands consumers what the log holds.
func WithDataProtector(p DataProtector) Option {
	return func(o *options) error { o.protector = p; return nil }
}

// seal seals e's data and partition key in place (e is the publisher's copy).
func (c *Client) seal(e *event.Event) error {
	p := c.opts.protector
	if p == nil {
		return nil
	}
	data, err := p.Seal(e.DataEncoded)
	if err != nil {
		return fmt.Errorf("%w: seal personal data of %s: %w", event.ErrInvalid, e.ID(), err)
	}
	e.DataEncoded = data
	if k := event.PartitionKey(*e); k != "" {
		if s := p.SealPartitionKey(k); s != k {
			e.SetExtension(event.ExtPartitionKey, s)
		}
	}
	return nil
}

// open opens e's sealed data in place.
func (c *Client) open(e *event.Event) error {
	p := c.opts.protector
	if p == nil || len(e.DataEncoded) == 0 {
		return nil
	}
	data, err := p.Open(e.DataEncoded)
	if err != nil {
		return fmt.Errorf("open personal data: %w", err)
	}
	e.DataEncoded = data
	return nil
}
