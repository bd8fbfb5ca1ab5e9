package douyin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// windows keeps each user's last message and the replies since, for Douyin's reply window and
// quota (key u.<hash of the open_id>: open_ids may hold characters keys may not).
type windows struct {
	kv     jetstream.KeyValue
	window time.Duration
	quota  int
}

// conversation is a user's last message: what a reply must name, and the replies since.
type conversation struct {
	At             time.Time `json:"at"`
	MsgID          string    `json:"msg_id"`
	ConversationID string    `json:"conversation_id"`
	Account        string    `json:"account"`
	Replies        int       `json:"replies,omitempty"`
}

// kvTimeout bounds one bucket operation.
const kvTimeout = time.Second

func userKey(openID string) string {
	h := sha256.Sum256([]byte(openID))
	return "u." + hex.EncodeToString(h[:20])
}

// record notes a user's message; an older message than the one recorded (a late retry) changes
// nothing, and the same message again keeps its reply count.
func (w *windows) record(ctx context.Context, openID string, c conversation) error {
	ctx, cancel := context.WithTimeout(ctx, kvTimeout)
	defer cancel()
	prev, _, err := w.get(ctx, openID)
	if err != nil {
		return err
	}
	if prev != nil && (prev.At.After(c.At) || prev.MsgID == c.MsgID) {
		return nil
	}
	b, _ := json.Marshal(c) // cannot fail
	_, err = w.kv.Put(ctx, userKey(openID), b)
	return err
}

func (w *windows) get(ctx context.Context, openID string) (*conversation, uint64, error) {
	e, err := w.kv.Get(ctx, userKey(openID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	var c conversation
	if err := json.Unmarshal(e.Value(), &c); err != nil || c.MsgID == "" {
		return nil, 0, nil //nolint:nilerr // an unreadable entry is no conversation
	}
	return &c, e.Revision(), nil
}

// Why a reply is refused without calling Douyin.
var (
	errOutsideWindow = errors.New("outside Douyin's reply window")
	errQuota         = errors.New("reply quota used up until the user writes again")
)

// open returns the conversation a reply to openID at now answers, errOutsideWindow or errQuota
// with the reason when Douyin would refuse it, or the bucket's error. Unlike Weibo, a user with
// no record cannot be left to Douyin: a reply must name the message it answers.
func (w *windows) open(ctx context.Context, openID string, now time.Time) (*conversation, error) {
	ctx, cancel := context.WithTimeout(ctx, kvTimeout)
	defer cancel()
	c, _, err := w.get(ctx, openID)
	switch {
	case err != nil:
		return nil, err
	case c == nil:
		return nil, fmt.Errorf("%w: no message from this user is on record (Douyin takes replies to a user's message only)", errOutsideWindow)
	case now.Sub(c.At) > w.window:
		return nil, fmt.Errorf("%w (%s): the user's last message was at %s", errOutsideWindow, w.window, c.At.Format(time.RFC3339))
	case c.Replies >= w.quota:
		return nil, fmt.Errorf("%w: %d replies since the user's last message at %s", errQuota, c.Replies, c.At.Format(time.RFC3339))
	}
	return c, nil
}

// replied counts a reply to the message msgID; when the user has written since, the new
// message's count starts from zero and nothing changes.
func (w *windows) replied(ctx context.Context, openID, msgID string) error {
	ctx, cancel := context.WithTimeout(ctx, kvTimeout)
	defer cancel()
	for range 5 {
		c, rev, err := w.get(ctx, openID)
		if err != nil || c == nil || c.MsgID != msgID {
			return err
		}
		c.Replies++
		b, _ := json.Marshal(c) // cannot fail
		if _, err = w.kv.Update(ctx, userKey(openID), b, rev); err == nil || !errors.Is(err, jetstream.ErrKeyExists) {
			return err
		}
	}
	return errors.New("reply count: the entry kept changing")
}
