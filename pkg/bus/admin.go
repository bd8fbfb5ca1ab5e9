package bus

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// adminBudget bounds how long a start-up administration call (provisioning streams, opening a
// key-value bucket) keeps trying when its context has no deadline of its own: a server still
// recovering its streams after a crash, or a loaded machine, answers an attempt late, and a
// service should not exit for that.
const adminBudget = 30 * time.Second

// retryAdmin runs op with attempts of timeout each until it succeeds, fails for a reason other
// than the server answering late or not at all, or the budget (ctx's deadline, else
// adminBudget) is spent. It returns op's last error.
func retryAdmin(ctx context.Context, timeout time.Duration, op func(context.Context) error) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, adminBudget)
		defer cancel()
	}
	wait := 100 * time.Millisecond
	for {
		actx, cancel := context.WithTimeout(ctx, timeout)
		err := op(actx)
		cancel()
		if err == nil || !lateOrAbsent(err) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// lateOrAbsent reports whether err says the server did not answer in time or nobody answered:
// worth another attempt, unlike a refusal.
func lateOrAbsent(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoHeartbeat) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled)
}
