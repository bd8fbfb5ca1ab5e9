package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/codes"

	"github.com/omnibus-dev/omnibus/pkg/event"
)

// LivePrefix starts every live subject. No stream captures omni.live.> (StreamOf reports none
// for it), so what is published there is never stored.
const LivePrefix = "omni.live."

// ErrNotLive is wrapped by PublishLive and SubscribeLive for a subject outside LivePrefix (or
// one a stream captures): live events must not reach the log.
var ErrNotLive = errors.New("not a live subject")

// Live publishes and receives ephemeral events on core NATS: progress that is worth showing
// while it happens and worthless afterwards (an AI suggestion's tokens as they arrive). Delivery
// is at most once — no stream, no ack, no redelivery; a subscriber that is not connected at the
// moment misses the event, and a slow one may lose events when its pending buffer fills. Every
// live event must therefore be superseded by a durable one on a stream (the suggestion's
// .completed), so that a lost live event costs smoothness, never data. Events are CloudEvents in
// the same binary binding as on JetStream, validated against their schema on both sides.
type Live interface {
	// PublishLive validates e and publishes it on subject (which must start with LivePrefix)
	// without waiting for anyone. Errors wrap ErrNotLive, schema.ErrInvalid,
	// schema.ErrUnknownType, event.ErrInvalid or ErrPublish (the connection is closed).
	PublishLive(ctx context.Context, subject string, e event.Event) error
	// SubscribeLive calls h with every valid live event published on subject (a pattern with *
	// and > under LivePrefix) until the subscription is stopped. h runs on one goroutine per
	// subscription, in arrival order, and must not block; events that do not decode or
	// validate are dropped with a warning. Errors wrap ErrNotLive or the NATS error.
	SubscribeLive(subject string, h LiveHandler) (*LiveSubscription, error)
}

// LiveHandler handles one live event; subject is the one it was published on.
type LiveHandler func(ctx context.Context, subject string, e event.Event)

var _ Live = (*Client)(nil)

func liveSubject(subject string) error {
	if !strings.HasPrefix(subject, LivePrefix) || len(subject) == len(LivePrefix) {
		return fmt.Errorf("%w: %q does not start with %s", ErrNotLive, subject, LivePrefix)
	}
	if s, ok := StreamOf(subject); ok {
		return fmt.Errorf("%w: %q is captured by stream %s", ErrNotLive, subject, s)
	}
	return nil
}

// PublishLive implements Live.
func (c *Client) PublishLive(ctx context.Context, subject string, e event.Event) error {
	if err := liveSubject(subject); err != nil {
		return err
	}
	msg, span, err := c.prepare(ctx, subject, &e, false)
	if err != nil {
		return err
	}
	defer span.End()
	if err := c.nc.PublishMsg(msg); err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		return fmt.Errorf("%w: %s on %s: %w", ErrPublish, e.ID(), subject, err)
	}
	return nil
}

// LiveSubscription is a running SubscribeLive.
type LiveSubscription struct {
	sub  *nats.Subscription
	once sync.Once
	err  error
}

// SubscribeLive implements Live.
func (c *Client) SubscribeLive(subject string, h LiveHandler) (*LiveSubscription, error) {
	if err := liveSubject(subject); err != nil {
		return nil, err
	}
	sub, err := c.nc.Subscribe(subject, func(msg *nats.Msg) {
		e, err := event.Decode(msg.Header, msg.Data)
		if err == nil && msg.Header.Get(HeaderSchema) != c.opts.schemas.Fingerprint() {
			err = c.validate(e)
		}
		if err != nil {
			c.opts.log.Warn("live event dropped", "subject", msg.Subject, "err", err)
			return
		}
		ctx := tracePropagator.Extract(context.Background(), headerCarrier(msg.Header))
		h(ctx, msg.Subject, e)
	})
	if err != nil {
		return nil, fmt.Errorf("live subscription %s: %w", subject, err)
	}
	return &LiveSubscription{sub: sub}, nil
}

// Stop ends the subscription: h is not called again once the event it may be handling
// returns. It is safe to call more than once.
func (s *LiveSubscription) Stop() error {
	s.once.Do(func() {
		s.err = s.sub.Unsubscribe()
		if errors.Is(s.err, nats.ErrConnectionClosed) || errors.Is(s.err, nats.ErrBadSubscription) {
			s.err = nil
		}
	})
	return s.err
}
