package wechatkf

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/webhook"
	"github.com/omnibus-dev/omnibus/pkg/wire/wecom"
)

// callbacks serves GET and POST /hooks/wechatkf/callback.
//
// WeCom's callback only rings the doorbell: the messages themselves wait in kf/sync_msg. A
// POST is authenticated (timestamp window, msg_signature, decryption, receive id), then the
// callback pulls the account's new messages and publishes them before it answers 200, so that,
// as for every omnibus webhook, a 2xx means the messages are on the bus. What does not fit in
// the callback budget is pulled in the background. When the pull fails (WeCom or JetStream
// down), the answer is 503 and WeCom retries the callback; the background loop retries too,
// so the messages are not lost even once WeCom gives up: they stay in sync_msg behind the
// persisted cursor.
//
// Answers: 200 "success"; 400 malformed (XML, timestamp, ciphertext); 401 signature, stale
// timestamp or another corp's receive id; 413 body over 64 KiB; 503 pull or publish failed.
type callbacks struct {
	crypto *wecom.Crypto
	puller *puller
	window time.Duration
	budget time.Duration
	log    *slog.Logger
	now    func() time.Time
}

// maxCallbackBody caps a callback body: WeCom's are well under 1 KiB.
const maxCallbackBody = 64 << 10

// open authenticates a callback's query and decrypts encrypt.
func (c *callbacks) open(r *http.Request, encrypt string) ([]byte, error) {
	q := r.URL.Query()
	ts := q.Get("timestamp")
	if _, err := webhook.CheckTimestamp(ts, c.window, c.now()); err != nil {
		return nil, err // ErrMalformed (400) or ErrExpired (401)
	}
	sig := q.Get("msg_signature")
	if sig == "" {
		return nil, fmt.Errorf("%w: msg_signature missing", webhook.ErrSignature)
	}
	msg, err := c.crypto.Open(sig, ts, q.Get("nonce"), encrypt)
	switch {
	case errors.Is(err, wecom.ErrSignature):
		return nil, fmt.Errorf("%w: msg_signature does not match sha1(sort(token, timestamp, nonce, encrypt))", webhook.ErrSignature)
	case errors.Is(err, wecom.ErrReceiveID):
		return nil, fmt.Errorf("%w: %w (want WECHATKF_CORP_ID)", webhook.ErrSignature, err)
	case err != nil:
		return nil, fmt.Errorf("%w: %w", webhook.ErrMalformed, err)
	}
	return msg, nil
}

// verifyURL answers WeCom's URL verification: GET ?msg_signature&timestamp&nonce&echostr with
// the decrypted echostr as the bare body.
func (c *callbacks) verifyURL(w http.ResponseWriter, r *http.Request) {
	// Base64 has no spaces: a "+" that reached us unencoded was decoded to " " by the query parser.
	echo := strings.ReplaceAll(r.URL.Query().Get("echostr"), " ", "+")
	if echo == "" {
		c.fail(w, r, fmt.Errorf("%w: echostr missing", webhook.ErrMalformed))
		return
	}
	plain, err := c.open(r, echo)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(plain)
}

// notice handles a message callback.
func (c *callbacks) notice(w http.ResponseWriter, r *http.Request) {
	body, err := webhook.ReadBody(w, r, maxCallbackBody)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	env, err := wecom.ParseEnvelope(body)
	if err != nil {
		c.fail(w, r, fmt.Errorf("%w: %w", webhook.ErrMalformed, err))
		return
	}
	plain, err := c.open(r, env.Encrypt)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	cb, err := wecom.ParseCallback(plain)
	if err != nil {
		c.fail(w, r, fmt.Errorf("%w: %w", webhook.ErrMalformed, err))
		return
	}
	if !cb.IsKfNotice() {
		// A WeCom callback of another kind (an app message, a contact change): authentic, but
		// nothing this connector handles. Acknowledge it so WeCom does not retry.
		c.log.InfoContext(r.Context(), "WeCom callback ignored: not a kf_msg_or_event notice", "msgtype", cb.MsgType, "event", cb.Event)
		success(w)
		return
	}
	if !kfIDPattern.MatchString(cb.OpenKfID) {
		c.fail(w, r, fmt.Errorf("%w: OpenKfId %q is not an open_kfid", webhook.ErrMalformed, truncate(cb.OpenKfID, 80)))
		return
	}
	token := cb.Token
	if len(token) > wecom.MaxMsgTokenLen {
		token = ""
	}
	if err := c.pull(r.Context(), cb.OpenKfID, token); err != nil {
		c.log.ErrorContext(r.Context(), "kf callback: pull failed; WeCom will retry", "open_kfid", cb.OpenKfID, "err", err)
		webhook.WriteNotStored(w, http.StatusServiceUnavailable, err)
		return
	}
	success(w)
}

// pull drains the account within the callback budget; the rest goes to the background loop.
func (c *callbacks) pull(ctx context.Context, kfID, token string) error {
	start := c.now()
	ctx, cancel := context.WithTimeout(ctx, c.budget+time.Second) // the last page may start at the budget's end
	defer cancel()
	unlock, ok := c.puller.lock(ctx, kfID, c.budget/3)
	if !ok {
		// The account is being pulled (another callback, the background loop): that pull, or
		// the one scheduled here, fetches this notice's messages. They wait in sync_msg until.
		c.puller.schedule(kfID, token)
		return nil
	}
	n, more, err := c.puller.drain(ctx, kfID, token, max(c.budget-c.now().Sub(start), time.Millisecond))
	unlock()
	if err != nil || more {
		c.puller.schedule(kfID, token)
	}
	if n > 0 {
		c.log.DebugContext(ctx, "kf callback pulled", "open_kfid", kfID, "published", n, "more", more)
	}
	return err
}

func success(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("success"))
}

// fail answers a refused callback: 400 malformed, 401 signature or timestamp, 413 too large.
func (c *callbacks) fail(w http.ResponseWriter, r *http.Request, err error) {
	webhook.Fail(w, r, c.log, webhook.Status(err, http.StatusBadRequest), err)
}
