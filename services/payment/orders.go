package payment

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnibus-dev/omnibus/pkg/connector"
)

// order is a link the connector created, kept in the payment_orders bucket under its
// out_trade_no: what a notify is checked against, and what the sweep queries and closes.
type order struct {
	OutTradeNo     string    `json:"out_trade_no"`
	Provider       string    `json:"provider"`
	RequestID      string    `json:"request_id"`
	ConversationID string    `json:"conversation_id,omitempty"`
	CustomerID     string    `json:"customer_id,omitempty"`
	OrderID        string    `json:"order_id,omitempty"`
	Description    string    `json:"description"`
	PartitionKey   string    `json:"partition_key,omitempty"`
	Fen            int64     `json:"fen"`
	CreatedAt      time.Time `json:"created_at"`
	ExpiresAt      time.Time `json:"expires_at"`
	Status         string    `json:"status"`
	QueriedAt      time.Time `json:"queried_at,omitzero"`
}

// errUnknownOrder is returned for an out_trade_no the connector never created.
var errUnknownOrder = errors.New("unknown order")

// orders is the payment_orders bucket.
type orders struct{ kv jetstream.KeyValue }

// ordersKept is how long an order outlives its expiry in the bucket: notifies of a late payment
// or a refund still find it.
const ordersKept = 7 * 24 * time.Hour

func openOrders(ctx context.Context, rt *connector.Runtime, expiry time.Duration) (*orders, error) {
	kv, err := rt.KeyValue(ctx, jetstream.KeyValueConfig{Bucket: "payment_orders", Description: "payment links by out_trade_no",
		TTL: expiry + ordersKept, History: 1})
	if err != nil {
		return nil, err
	}
	return &orders{kv: kv}, nil
}

// create stores o unless its out_trade_no exists, and returns the stored order either way (a
// redelivered request gets its first expiry back).
func (s *orders) create(ctx context.Context, o order) (order, error) {
	b, err := json.Marshal(o)
	if err != nil {
		return order{}, err
	}
	if _, err := s.kv.Create(ctx, o.OutTradeNo, b); err == nil {
		return o, nil
	} else if !errors.Is(err, jetstream.ErrKeyExists) {
		return order{}, err
	}
	got, _, err := s.get(ctx, o.OutTradeNo)
	return got, err
}

// get returns the order of outTradeNo and its revision, or errUnknownOrder.
func (s *orders) get(ctx context.Context, outTradeNo string) (order, uint64, error) {
	if !validKey(outTradeNo) {
		return order{}, 0, fmt.Errorf("%w: %q", errUnknownOrder, outTradeNo)
	}
	e, err := s.kv.Get(ctx, outTradeNo)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return order{}, 0, fmt.Errorf("%w: %s", errUnknownOrder, outTradeNo)
	}
	if err != nil {
		return order{}, 0, err
	}
	var o order
	if err := json.Unmarshal(e.Value(), &o); err != nil {
		return order{}, 0, err
	}
	return o, e.Revision(), nil
}

// update applies f to the stored order (compare-and-set, retried on a concurrent write).
func (s *orders) update(ctx context.Context, outTradeNo string, f func(*order)) error {
	for range 5 {
		o, rev, err := s.get(ctx, outTradeNo)
		if err != nil {
			return err
		}
		f(&o)
		b, err := json.Marshal(o)
		if err != nil {
			return err
		}
		if _, err = s.kv.Update(ctx, outTradeNo, b, rev); err == nil {
			return nil
		}
	}
	return fmt.Errorf("order %s: concurrent updates", outTradeNo)
}

// pending returns the orders still waiting for payment.
func (s *orders) pending(ctx context.Context) ([]order, error) {
	lister, err := s.kv.ListKeys(ctx)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, err
	}
	var out []order
	for k := range lister.Keys() {
		o, _, err := s.get(ctx, k)
		if err == nil && o.Status == StatusPending {
			out = append(out, o)
		}
	}
	return out, nil
}

// validKey reports whether s is an out_trade_no the connector could have made (and a valid key).
func validKey(s string) bool {
	if len(s) < 6 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if (r < '0' || r > '9') && (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && r != '_' && r != '-' {
			return false
		}
	}
	return true
}

// nonces remembers the Wechatpay-Nonce of every notify accepted within the window: a notify
// whose nonce was seen is a replay.
type nonces struct{ kv jetstream.KeyValue }

func openNonces(ctx context.Context, rt *connector.Runtime, window time.Duration) (*nonces, error) {
	kv, err := rt.KeyValue(ctx, jetstream.KeyValueConfig{Bucket: "payment_nonces", Description: "notify nonces seen (replay guard)",
		TTL: 2 * window, History: 1})
	if err != nil {
		return nil, err
	}
	return &nonces{kv: kv}, nil
}

// errReplay is returned for a nonce already used.
var errReplay = errors.New("nonce already used")

// use records nonce, or returns errReplay when it was used within the window.
func (n *nonces) use(ctx context.Context, nonce string) error {
	h := sha256.Sum256([]byte(nonce))
	_, err := n.kv.Create(ctx, hex.EncodeToString(h[:16]), nil)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return errReplay
	}
	return err
}
