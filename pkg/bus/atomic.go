package bus

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
	"go.opentelemetry.io/otel/codes"
)

// MaxAtomicBatch is the most messages JetStream takes in one atomic batch (the server's default
// limit, jetstream.limits.max_batch_size).
const MaxAtomicBatch = 1000

// PublishAtomic publishes batch like PublishBatch but as JetStream atomic batches (ADR-50,
// nats-server 2.12+): the events bound for each stream, in batch order and in chunks of at most
// MaxAtomicBatch, are stored all or nothing with one acknowledgement per chunk; the streams'
// chunks go out concurrently (there is no order across streams). On a server that syncs every
// write to disk (sync_interval: always) a chunk costs one fsync instead of one per message, which
// is what limits a relay or loader there; with NATS's default sync interval it costs the server
// more CPU than per-message publishes (see WithAtomicBatches, which makes PublishBatch use it).
//
// A chunk holding an event the stream has already stored (a retry after a lost ack, or after a
// crash between the publish and the caller's bookkeeping) is refused whole by the server; it is
// then published one message at a time, so the stored events are dropped as duplicates
// (Nats-Msg-Id) and the rest stored. So is a chunk for a stream without atomic publish.
//
// The result is PublishBatch's: nil when every event was stored, else a *BatchError naming the
// failed indexes — invalid events fail alone, a failed chunk fails all its events, and a retry of
// the whole batch is idempotent within the duplicate window.
func (c *Client) PublishAtomic(ctx context.Context, batch []Outgoing) error {
	if len(batch) == 0 {
		return nil
	}
	start := time.Now()
	errs := map[int]error{}
	byStream := map[string][]preparedMsg{}
	var streams []string
	for _, m := range c.prepareAll(ctx, batch, errs) {
		st, _ := StreamOf(m.msg.Subject)
		if _, ok := byStream[st]; !ok {
			streams = append(streams, st)
		}
		byStream[st] = append(byStream[st], m)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, st := range streams {
		wg.Go(func() {
			serr := map[int]error{}
			if st == "" {
				// Subjects outside the omnibus streams: no one stream to batch for.
				c.publishAsync(ctx, batch, byStream[st], start, serr)
			} else {
				for msgs := range slices.Chunk(byStream[st], MaxAtomicBatch) {
					c.publishChunk(ctx, batch, msgs, start, serr)
				}
			}
			mu.Lock()
			maps.Copy(errs, serr)
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(errs) == 0 {
		return nil
	}
	return &BatchError{Failed: errs}
}

// publishChunk stores msgs, all bound for one stream, as one atomic batch.
func (c *Client) publishChunk(ctx context.Context, batch []Outgoing, msgs []preparedMsg, start time.Time, errs map[int]error) {
	if len(msgs) == 1 {
		c.publishAsync(ctx, batch, msgs, start, errs)
		return
	}
	nm := make([]*nats.Msg, len(msgs))
	for i, m := range msgs {
		nm[i] = m.msg
	}
	actx, cancel := withDefaultTimeout(ctx, c.opts.timeout)
	// The first message is acknowledged (the library's default): a batch the stream refuses
	// (duplicates, no atomic publish) fails there, at once, rather than at the commit.
	_, err := jetstreamext.PublishMsgBatch(actx, c.js, nm)
	cancel()
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstreamext.JSErrCodeBatchPublishDuplicateMsgID ||
		apiErr.ErrorCode == jetstreamext.JSErrCodeBatchPublishNotEnabled) {
		stream, _ := StreamOf(msgs[0].msg.Subject)
		c.opts.log.Debug("atomic batch refused; publishing its messages one by one", "stream", stream,
			"size", len(msgs), "reason", apiErr.Description)
		for _, m := range nm {
			m.Reply = ""
			m.Header.Del(jetstreamext.BatchIDHeader)
			m.Header.Del(jetstreamext.BatchSeqHeader)
			m.Header.Del(jetstreamext.BatchCommitHeader)
		}
		c.publishAsync(ctx, batch, msgs, start, errs)
		return
	}
	for _, m := range msgs {
		o := batch[m.i]
		c.recordPublish(ctx, o.Subject, o.Event.Type(), start, err)
		if err != nil {
			m.span.RecordError(err)
			m.span.SetStatus(codes.Error, err.Error())
			errs[m.i] = fmt.Errorf("%w: %s (atomic batch of %d): %w", ErrPublish, o.Event.ID(), len(msgs), err)
		}
		m.span.End()
	}
}
