package douyin

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/webhook"
	"github.com/omnibus-dev/omnibus/pkg/wire/douyin"
)

// maxEventBody caps an event body: a private message is a few hundred bytes to a few KiB.
const maxEventBody = 64 << 10

// callback serves POST /hooks/douyin/webhook.
type callback struct {
	cfg     *Config
	rt      *connector.Runtime
	windows *windows
	seen    *connector.Seen // server_message_ids stored in the last 24 h
	now     func() time.Time
}

// verify checks X-Douyin-Signature over the raw body. Douyin signs no timestamp: replays of a
// message are deduplicated by its id, replays of the challenge are harmless.
func (c *callback) verify(r *http.Request, body []byte) error {
	sig := r.Header.Get(douyin.SignatureHeader)
	if sig == "" || !douyin.Verify(c.cfg.ClientSecret, body, sig) {
		return fmt.Errorf("%w: %s is not sha1(client_secret + body)", webhook.ErrSignature, douyin.SignatureHeader)
	}
	return nil
}

// answer answers the console's URL check, verify_webhook, with its challenge.
func (c *callback) answer(_ *http.Request, body []byte) (any, bool, error) {
	if !bytes.Contains(body, []byte(douyin.EventVerifyWebhook)) {
		return nil, false, nil // not a check: the common case costs no decoding here
	}
	e, err := douyin.ParseEnvelope(body)
	if err != nil || e.Event != douyin.EventVerifyWebhook {
		return nil, false, nil //nolint:nilerr // decode refuses it with the reason
	}
	ch, err := douyin.ParseChallenge(e)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %w", webhook.ErrMalformed, err)
	}
	return ch, true, nil
}

func (c *callback) decode(r *http.Request, body []byte) ([]bus.Outgoing, error) {
	e, err := douyin.ParseEnvelope(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", webhook.ErrMalformed, err)
	}
	if e.ClientKey != "" && e.ClientKey != c.cfg.ClientKey {
		return nil, fmt.Errorf("%w: event for client_key %.40q, this connector is %s's", webhook.ErrMalformed, e.ClientKey, c.cfg.ClientKey)
	}
	if e.Event != douyin.EventReceiveMsg {
		// im_send_msg echoes the account's own sends (ours too): never a customer message.
		c.rt.Log.DebugContext(r.Context(), "douyin event ignored", "event", truncate(e.Event, 40))
		return nil, nil
	}
	m, err := douyin.ParseMessage(e)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", webhook.ErrMalformed, err)
	}
	id := string(m.ServerMessageID)
	if len(id) > 200 || len(e.FromUserID) > 200 || len(e.ToUserID) > 200 {
		return nil, fmt.Errorf("%w: ids over 200 bytes", webhook.ErrMalformed)
	}
	if stored, err := c.seen.Stored(r.Context(), Channel+":"+id); err != nil {
		return nil, err
	} else if stored {
		return nil, nil // Douyin's retry of a stored message: acknowledged again
	}
	content, _ := e.ContentJSON() // ParseMessage read it
	msg := normalize(m, content)
	sentAt, original := c.rt.EventTime(r.Context(), m.CreatedAt(), c.now(), "server_message_id", id)
	if err := c.windows.record(r.Context(), e.FromUserID, conversation{At: sentAt, MsgID: id,
		ConversationID: m.ConversationShortID, Account: e.ToUserID}); err != nil {
		return nil, fmt.Errorf("%w: reply window: %w", webhook.ErrUnavailable, err)
	}
	from := connector.Identity{Kind: IdentityKind, Value: e.FromUserID}
	data := received{Channel: Channel, ChannelMessageID: id, From: from, Account: e.ToUserID, Message: msg, SentAt: sentAt}
	for _, u := range m.UserInfos {
		if u.OpenID == e.FromUserID && strings.TrimSpace(u.NickName) != "" {
			data.DisplayName = clean(u.NickName, 256)
		}
	}
	if original != nil {
		data.VendorTime = original.UTC().Format(time.RFC3339Nano)
	}
	ev, err := c.rt.NewEvent(TypeReceived, data, event.WithID(Channel+":"+id), event.WithPartitionKey(from.Key()), event.WithTime(sentAt))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", webhook.ErrMalformed, err)
	}
	return []bus.Outgoing{{Subject: SubjectMessage, Event: ev}}, nil
}

// respond notes the stored messages' ids (best effort: JetStream's duplicate window still
// covers a retry within 2 minutes) and answers 200, which stops Douyin's retries.
func (c *callback) respond(w http.ResponseWriter, r *http.Request, published []bus.Outgoing) {
	if err := c.seen.MarkPublished(r.Context(), published); err != nil {
		c.rt.Log.WarnContext(r.Context(), "douyin: stored message not noted as seen; a late retry may be published again (same id)", "err", err)
	}
	webhook.WriteJSON(w, http.StatusOK, map[string]int{"err_no": 0})
}
