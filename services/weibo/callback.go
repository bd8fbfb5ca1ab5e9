package weibo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/webhook"
	"github.com/omnibus-dev/omnibus/pkg/wire/weibo"
)

// maxPushBody caps a push body: Weibo's are a few hundred bytes.
const maxPushBody = 64 << 10

// callback serves GET and POST /hooks/weibo/callback.
//
// Weibo's signature covers the query (secret, timestamp, nonce), not the body: whoever saw one
// signed push could post another body under the same query within the window. So a nonce is
// bound to the first body it came with: the same body again (Weibo retrying) is accepted and
// deduplicated, another body is refused with 401. Nonces are remembered for twice the signature
// window in memory (which also knows which pushes were stored) and in a KV bucket shared by the
// replicas (key n.<hash of timestamp.nonce>, value the body's SHA-256).
type callback struct {
	secret  string
	window  time.Duration
	nonces  *nonces
	shared  jetstream.KeyValue // the nonces of every replica (bucket TTL twice the window)
	rt      *connector.Runtime
	windows *windows
	now     func() time.Time
}

// authenticate checks the signed query of a verification or a push.
func (c *callback) authenticate(r *http.Request) error {
	q := r.URL.Query()
	ts, nonce, sig := q.Get("timestamp"), q.Get("nonce"), q.Get("signature")
	at, err := weibo.ParseTimestamp(ts)
	if err != nil {
		return fmt.Errorf("%w: %w", webhook.ErrMalformed, err)
	}
	if nonce == "" || len(nonce) > 64 {
		return fmt.Errorf("%w: nonce missing or over 64 bytes", webhook.ErrMalformed)
	}
	if d := c.now().Sub(at); d > c.window || d < -c.window {
		return fmt.Errorf("%w: timestamp %s is %s from now (window %s)", webhook.ErrExpired, at.UTC().Format(time.RFC3339), d.Round(time.Second), c.window)
	}
	if sig == "" || !weibo.Verify(c.secret, ts, nonce, sig) {
		return fmt.Errorf("%w: signature is not sha1(sort(app secret, timestamp, nonce))", webhook.ErrSignature)
	}
	return nil
}

// verifyURL answers Weibo's URL verification with echostr, unchanged.
func (c *callback) verifyURL(w http.ResponseWriter, r *http.Request) {
	echo := r.URL.Query().Get("echostr")
	err := c.authenticate(r)
	if err == nil && (echo == "" || len(echo) > 256) {
		err = fmt.Errorf("%w: echostr missing or over 256 bytes", webhook.ErrMalformed)
	}
	if err != nil {
		webhook.Fail(w, r, c.rt.Log, webhook.Status(err, http.StatusBadRequest), err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte(echo))
}

func (c *callback) verify(r *http.Request, body []byte) error {
	if err := c.authenticate(r); err != nil {
		return err
	}
	q := r.URL.Query()
	sum := sha256.Sum256(body)
	key := q.Get("timestamp") + "." + q.Get("nonce")
	use := c.nonces.use(key, sum, c.now())
	if use == nonceOtherBody {
		return fmt.Errorf("%w: nonce already used with another body (replay)", webhook.ErrSignature)
	}
	if c.shared == nil || use != nonceFirst {
		return nil // known here with this body: the bucket has it too
	}
	if err := c.share(r.Context(), key, sum); err != nil {
		c.nonces.forget(key) // another replica bound it to another body, or the bucket failed
		return err
	}
	return nil
}

// share binds key to body in the replicas' bucket, unless another replica bound it to another
// body first (ErrSignature).
func (c *callback) share(ctx context.Context, key string, sum [32]byte) error {
	// The other replicas' nonces: the first to see a nonce binds it to its body for all.
	ctx, cancel := context.WithTimeout(ctx, kvTimeout)
	defer cancel()
	h := sha256.Sum256([]byte(key))
	kvKey := "n." + hex.EncodeToString(h[:20])
	_, err := c.shared.Create(ctx, kvKey, sum[:])
	if errors.Is(err, jetstream.ErrKeyExists) {
		var e jetstream.KeyValueEntry
		if e, err = c.shared.Get(ctx, kvKey); err == nil && !bytes.Equal(e.Value(), sum[:]) {
			return fmt.Errorf("%w: nonce already used with another body (replay)", webhook.ErrSignature)
		}
	}
	if err != nil {
		return fmt.Errorf("%w: nonce bucket: %w", webhook.ErrUnavailable, err)
	}
	return nil
}

func (c *callback) decode(r *http.Request, body []byte) ([]bus.Outgoing, error) {
	// verify ran: a stored push (Weibo's retry of an answered push) is acknowledged again.
	if c.nonces.stored(nonceKey(r), sha256.Sum256(body)) {
		return nil, nil
	}
	p, at, err := weibo.ParsePush(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", webhook.ErrMalformed, err)
	}
	msg, opens, ok := normalize(p)
	if !ok {
		c.rt.Log.InfoContext(r.Context(), "weibo push ignored: unknown type", "type", truncate(p.Type, 32), "subtype", truncate(p.Data.Subtype, 32))
		return nil, nil
	}
	now := c.now()
	sentAt, original := connector.EventTime(at, now)
	uid := strconv.FormatInt(p.SenderID, 10)
	if opens != windowNone {
		if err := c.windows.record(r.Context(), uid, sentAt, opens == windowClose); err != nil {
			return nil, fmt.Errorf("%w: reply window of %s: %w", webhook.ErrUnavailable, uid, err)
		}
	}
	id := messageID(p, at)
	data := received{Channel: Channel, ChannelMessageID: id, From: identity{IdentityKind, uid},
		Account: strconv.FormatInt(p.ReceiverID, 10), Message: msg, SentAt: sentAt.UTC()}
	if original != nil {
		data.VendorTime = original.UTC().Format(time.RFC3339Nano)
	}
	e, err := c.rt.NewEvent(TypeReceived, data, event.WithID(Channel+":"+id),
		event.WithPartitionKey(IdentityKind+":"+uid), event.WithTime(sentAt))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", webhook.ErrMalformed, err)
	}
	return []bus.Outgoing{{Subject: SubjectMessage, Event: e}}, nil
}

// respond answers a stored push: 200 with an empty body, which tells Weibo there is no passive
// reply and not to retry.
func (c *callback) respond(w http.ResponseWriter, r *http.Request, _ []bus.Outgoing) {
	c.nonces.markStored(nonceKey(r))
	w.WriteHeader(http.StatusOK)
}

func nonceKey(r *http.Request) string {
	q := r.URL.Query()
	return q.Get("timestamp") + "." + q.Get("nonce")
}

// messageID is the push's id: Weibo gives none and recommends sender_id + created_at, which a
// second message in the same second would share, so a hash of the content completes it.
func messageID(p weibo.Push, at time.Time) string {
	data, _ := json.Marshal(p.Data) // a struct of strings and numbers: cannot fail
	h := sha256.New()
	for _, part := range [][]byte{[]byte(p.Type), []byte(p.Text), data, []byte(strconv.FormatInt(p.ReceiverID, 10))} {
		h.Write(part)
		h.Write([]byte{0})
	}
	return strconv.FormatInt(p.SenderID, 10) + ":" + strconv.FormatInt(at.Unix(), 10) + ":" + hex.EncodeToString(h.Sum(nil))[:16]
}

// nonces remembers which body each nonce came with.
type nonces struct {
	ttl  time.Duration
	mu   sync.Mutex
	seen map[string]*nonceEntry
	next int // sweep when seen grows past next
}

type nonceEntry struct {
	body   [32]byte
	at     time.Time
	stored bool
}

type nonceUse int

const (
	nonceFirst     nonceUse = iota // first use here
	nonceNew                       // the same body again, before it was stored
	nonceStored                    // the same body, already stored
	nonceOtherBody                 // another body: a replayed query
)

func newNonces(ttl time.Duration) *nonces {
	return &nonces{ttl: ttl, seen: map[string]*nonceEntry{}, next: 1024}
}

func (n *nonces) use(key string, body [32]byte, now time.Time) nonceUse {
	n.mu.Lock()
	defer n.mu.Unlock()
	if e, ok := n.seen[key]; ok && now.Sub(e.at) <= n.ttl {
		switch {
		case e.body != body:
			return nonceOtherBody
		case e.stored:
			return nonceStored
		}
		return nonceNew
	}
	if len(n.seen) >= n.next {
		for k, e := range n.seen {
			if now.Sub(e.at) > n.ttl {
				delete(n.seen, k)
			}
		}
		n.next = max(1024, 2*len(n.seen))
	}
	n.seen[key] = &nonceEntry{body: body, at: now}
	return nonceFirst
}

func (n *nonces) forget(key string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.seen, key)
}

func (n *nonces) stored(key string, body [32]byte) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	e, ok := n.seen[key]
	return ok && e.stored && e.body == body
}

func (n *nonces) markStored(key string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if e, ok := n.seen[key]; ok {
		e.stored = true
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 { // do not cut a UTF-8 sequence
		n--
	}
	return s[:n]
}
