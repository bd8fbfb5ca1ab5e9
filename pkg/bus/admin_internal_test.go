package bus

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// An administration call the server answers late is tried again; a refusal is returned at once.
func TestRetryAdmin(t *testing.T) {
	t.Parallel()
	calls := 0
	err := retryAdmin(context.Background(), 20*time.Millisecond, func(ctx context.Context) error {
		if calls++; calls < 3 {
			<-ctx.Done() // the server answers after the attempt's timeout
			return ctx.Err()
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("late answers: %d calls, %v; want success on the third", calls, err)
	}

	calls = 0
	refused := &jetstream.APIError{Code: 400, ErrorCode: jetstream.JSErrCodeStreamNameInUse, Description: "stream name already in use"}
	err = retryAdmin(context.Background(), 20*time.Millisecond, func(context.Context) error { calls++; return refused })
	if !errors.Is(err, refused) || calls != 1 {
		t.Fatalf("a refusal: %d calls, %v; want it returned after one", calls, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	calls = 0
	err = retryAdmin(ctx, 20*time.Millisecond, func(ctx context.Context) error { calls++; <-ctx.Done(); return ctx.Err() })
	if !errors.Is(err, context.DeadlineExceeded) || calls < 1 {
		t.Fatalf("a server that never answers: %d calls, %v; want attempts until the deadline, then its error", calls, err)
	}
}
