package kuaishou

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/webhook"
	"github.com/omnibus-dev/omnibus/pkg/wire/kuaishou"
)

// maxEventBody caps an event body.
const maxEventBody = 64 << 10

// callback serves POST /hooks/kuaishou/webhook.
type callback struct {
	cfg  *Config
	rt   *connector.Runtime
	seen *connector.Seen // msg_ids stored in the last 24 h
	now  func() time.Time
}

// verify checks kwaisign over the raw body. Kuaishou signs no timestamp: a replayed message is
// the same msg_id, stored once.
func (c *callback) verify(r *http.Request, body []byte) error {
	sig := r.Header.Get(kuaishou.SignHeader)
	if sig == "" || !kuaishou.Verify(c.cfg.AppSecret, body, sig) {
		return fmt.Errorf("%w: %s is not md5(body + app secret)", webhook.ErrSignature, kuaishou.SignHeader)
	}
	return nil
}

func (c *callback) decode(r *http.Request, body []byte) ([]bus.Outgoing, error) {
	e, err := kuaishou.ParseEnvelope(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", webhook.ErrMalformed, err)
	}
	if c.cfg.AppKey != "" && e.AppKey != "" && e.AppKey != c.cfg.AppKey {
		return nil, fmt.Errorf("%w: event for app_key %.40q, this connector is %s's", webhook.ErrMalformed, e.AppKey, c.cfg.AppKey)
	}
	if e.Event != c.cfg.MessageEvent {
		// TEST (the URL check), authorisations and events this connector does not map.
		c.rt.Log.DebugContext(r.Context(), "kuaishou event acknowledged, not published", "event", clean(e.Event, 64))
		return nil, nil
	}
	data, err := e.DataJSON()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", webhook.ErrMalformed, err)
	}
	m, err := parseMessage(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", webhook.ErrMalformed, err)
	}
	if stored, err := c.seen.Stored(r.Context(), Channel+":"+m.MsgID); err != nil {
		return nil, err
	} else if stored {
		return nil, nil // Kuaishou's retry of a stored message: acknowledged again
	}
	sentAt, original := c.rt.EventTime(r.Context(), m.createdAt(), c.now(), "msg_id", m.MsgID)
	from := connector.Identity{Kind: IdentityKind, Value: m.FromUserID}
	out := received{Channel: Channel, ChannelMessageID: m.MsgID, From: from, Account: m.ToUserID,
		Message: normalize(m, data), SentAt: sentAt}
	if name := strings.TrimSpace(m.NickName); name != "" {
		out.DisplayName = clean(name, 256)
	}
	if original != nil {
		out.VendorTime = original.UTC().Format(time.RFC3339Nano)
	}
	ev, err := c.rt.NewEvent(TypeReceived, out, event.WithID(Channel+":"+m.MsgID), event.WithPartitionKey(from.Key()), event.WithTime(sentAt))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", webhook.ErrMalformed, err)
	}
	return []bus.Outgoing{{Subject: SubjectMessage, Event: ev}}, nil
}

// respond notes the stored messages' ids and answers {"result":1}, which stops Kuaishou's
// retries (any other answer is retried).
func (c *callback) respond(w http.ResponseWriter, r *http.Request, published []bus.Outgoing) {
	if err := c.seen.MarkPublished(r.Context(), published); err != nil {
		c.rt.Log.WarnContext(r.Context(), "kuaishou: stored message not noted as seen; a late retry may be published again (same id)", "err", err)
	}
	webhook.WriteJSON(w, http.StatusOK, kuaishou.Acknowledged)
}
