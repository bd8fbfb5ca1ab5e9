package bus

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// KeyValues opens the JetStream key-value buckets services keep their state in (cursors, what
// was sent, per-conversation context), so that a service needs no JetStream handle of its own
// for them. Connectors reach it through connector.Runtime.KeyValue.
type KeyValues interface {
	// KeyValue creates the bucket cfg declares, or updates an existing one to cfg, and returns
	// it. It is idempotent: every replica of a service calls it at start with the same cfg.
	// Attempts the server answers late are repeated, for up to 30 s unless ctx says otherwise.
	// Errors wrap jetstream.ErrInvalidBucketName, jetstream.ErrBucketExists (cfg cannot be
	// applied to the existing bucket) or the JetStream error.
	KeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error)
}

// KeyValue implements KeyValues.
func (c *Client) KeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	var kv jetstream.KeyValue
	err := retryAdmin(ctx, c.opts.timeout, func(ctx context.Context) (err error) {
		kv, err = c.js.CreateOrUpdateKeyValue(ctx, cfg)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}

var _ KeyValues = (*Client)(nil)
