package weibo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnibus-dev/omnibus/pkg/wire/weibo"
)

// windows keeps each fan's last message time (key uid.<uid>) for the 48 h reply window.
type windows struct {
	kv jetstream.KeyValue
}

type windowEntry struct {
	At         time.Time `json:"at"`
	Unfollowed bool      `json:"unfollowed,omitempty"`
}

// kvTimeout bounds one bucket operation.
const kvTimeout = time.Second

// record notes a push at at; an older push than the one recorded (a late retry) changes nothing.
func (w *windows) record(ctx context.Context, uid string, at time.Time, unfollowed bool) error {
	ctx, cancel := context.WithTimeout(ctx, kvTimeout)
	defer cancel()
	prev, err := w.get(ctx, uid)
	if err != nil {
		return err
	}
	if prev != nil && prev.At.After(at) {
		return nil
	}
	b, _ := json.Marshal(windowEntry{At: at.UTC(), Unfollowed: unfollowed}) // cannot fail
	_, err = w.kv.Put(ctx, "uid."+uid, b)
	return err
}

func (w *windows) get(ctx context.Context, uid string) (*windowEntry, error) {
	e, err := w.kv.Get(ctx, "uid."+uid)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var we windowEntry
	if err := json.Unmarshal(e.Value(), &we); err != nil {
		return nil, nil //nolint:nilerr // an unreadable entry is no window
	}
	return &we, nil
}

// errOutsideWindow is why a reply is refused without calling Weibo.
var errOutsideWindow = errors.New("outside Weibo's 48 h reply window")

// open reports nil when a reply to uid may be allowed at now, errOutsideWindow with the reason
// when it is known not to be, or the bucket's error. A fan the bucket has no record of (who wrote
// before the connector ran, or a bucket rebuilt) is left to Weibo, which refuses the reply if
// the window is closed.
func (w *windows) open(ctx context.Context, uid string, now time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, kvTimeout)
	defer cancel()
	e, err := w.get(ctx, uid)
	switch {
	case err != nil:
		return err
	case e == nil:
		return nil
	case e.Unfollowed:
		return fmt.Errorf("%w: the fan unfollowed the account at %s", errOutsideWindow, e.At.Format(time.RFC3339))
	case now.Sub(e.At) > weibo.ReplyWindow:
		return fmt.Errorf("%w: the fan's last message was at %s", errOutsideWindow, e.At.Format(time.RFC3339))
	}
	return nil
}
