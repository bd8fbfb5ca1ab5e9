// Package kuaishou simulates the Kuaishou open platform (快手开放平台) webhook for one app,
// mounted on a sim.Env: the platform's side of pkg/wire/kuaishou. Test POSTs the TEST event
// sent when the URL is saved; Push POSTs an event with the kwaisign header (hex MD5(raw body +
// app secret)) and retries it, four attempts in all (Kuaishou: 3 retries at 5 s intervals),
// until the connector answers 2xx with {"result":1} — any other answer is a failed attempt.
//
// Kuaishou documents no private-message event and no send API, so the simulator serves no API
// route (nothing for the connector to call, nothing to inject faults into) and its message
// event is this repository's assumption (Message, under the event name of
// KUAISHOU_MESSAGE_EVENT, default PRIVATE_MESSAGE), the shape services/kuaishou/message.go maps.
//
// Customers: a simulated customer on Kuaishou is an open_id derived from them (OpenID).
package kuaishou

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	wire "github.com/omnibus-dev/omnibus/pkg/wire/kuaishou"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

// Connector is the connector's name: events go to <hook base>/kuaishou/webhook.
const Connector = "kuaishou"

// DefaultMessageEvent is the simulator's name of a private-message event.
const DefaultMessageEvent = "PRIVATE_MESSAGE"

// Config configures the simulated app. Zero fields take the defaults shown.
type Config struct {
	// AppKey is the app's key, in every event. Required.
	AppKey string
	// AppSecret signs the events (the connector's KUAISHOU_APP_SECRET). Required.
	AppSecret string
	// MessageEvent names the private-message event. Default DefaultMessageEvent.
	MessageEvent string
	// AccountOpenID is the receiving account's open_id. Default "ks_omnibus_sandbox_account".
	AccountOpenID string
	// RetryDelay is the wait before an event is retried. Default 5s, as Kuaishou.
	RetryDelay time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Message is the (assumed) data of a private-message event.
type Message struct {
	MsgID      string `json:"msg_id"`
	FromUserID string `json:"from_user_id"`
	ToUserID   string `json:"to_user_id"`
	MsgType    string `json:"msg_type"`
	Text       string `json:"text,omitempty"`
	MediaURL   string `json:"media_url,omitempty"`
	CreateTime int64  `json:"create_time,omitempty"`
	NickName   string `json:"nick_name,omitempty"`
}

// Sim is the simulated platform.
type Sim struct {
	env *sim.Env
	cfg Config
	seq atomic.Int64
}

// New returns the simulator on env.
func New(env *sim.Env, cfg Config) (*Sim, error) {
	if cfg.AppKey == "" || cfg.AppSecret == "" {
		return nil, errors.New("kuaishou sandbox: AppKey and AppSecret are required")
	}
	if cfg.MessageEvent == "" {
		cfg.MessageEvent = DefaultMessageEvent
	}
	if cfg.AccountOpenID == "" {
		cfg.AccountOpenID = "ks_omnibus_sandbox_account"
	}
	if cfg.RetryDelay == 0 {
		cfg.RetryDelay = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Sim{env: env, cfg: cfg}
	s.seq.Store(3_000_000_000)
	return s, nil
}

// OpenID is customer c's open_id towards the app: deterministic, 32 hex digits.
func OpenID(c sim.Customer) string {
	sum := sha256.Sum256([]byte("kuaishou:" + c.Phone + ":" + strconv.Itoa(c.ID)))
	return hex.EncodeToString(sum[:16])
}

// Name is the omnibus channel: the Sim is the customers' Kuaishou (sim.Channel).
func (s *Sim) Name() string { return Connector }

// Write delivers text from c as a private message.
func (s *Sim) Write(ctx context.Context, c sim.Customer, text string) error {
	m := s.Text(OpenID(c), text)
	m.NickName = c.Name
	return s.Send(ctx, m)
}

// Text returns a text message from openID, created now, with a fresh msg_id.
func (s *Sim) Text(openID, text string) Message {
	return Message{MsgID: "ks" + strconv.FormatInt(s.seq.Add(1), 10), FromUserID: openID, ToUserID: s.cfg.AccountOpenID,
		MsgType: "text", Text: text, CreateTime: s.cfg.Now().UnixMilli()}
}

// Send pushes m as a private-message event.
func (s *Sim) Send(ctx context.Context, m Message) error {
	e, err := s.Envelope(s.cfg.MessageEvent, m)
	if err != nil {
		return err
	}
	return s.Push(ctx, e)
}

// Envelope wraps data in an event named event, with a fresh task id.
func (s *Sim) Envelope(event string, data any) (wire.Envelope, error) {
	b, err := json.Marshal(data)
	if err != nil {
		return wire.Envelope{}, err
	}
	return wire.Envelope{Event: event, TaskID: strconv.FormatUint(rand.Uint64(), 36), AppKey: s.cfg.AppKey, //nolint:gosec // an id
		Timestamp: s.cfg.Now().UnixMilli(), Data: b}, nil
}

// Test POSTs the TEST event, as the console does when the URL is saved.
func (s *Sim) Test(ctx context.Context) error {
	e, err := s.Envelope(wire.EventTest, map[string]string{})
	if err != nil {
		return err
	}
	return s.Push(ctx, e)
}

// Push POSTs e to the connector's webhook, signed, until it is acknowledged with {"result":1}
// (four attempts, the same body each time).
func (s *Sim) Push(ctx context.Context, e wire.Envelope) error {
	body, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return s.PushRaw(ctx, body)
}

// PushRaw POSTs body as an event until it is acknowledged (four attempts).
func (s *Sim) PushRaw(ctx context.Context, body []byte) error {
	if s.env.HookBase == "" {
		return errors.New("kuaishou sandbox: no hook base to push to")
	}
	hook := s.env.HookURL(Connector, "/webhook")
	var last error
	for attempt := range 4 {
		if attempt > 0 && !sim.Sleep(ctx, s.cfg.RetryDelay) {
			return errors.Join(last, ctx.Err())
		}
		if last = s.post(ctx, hook, body); last == nil {
			return nil
		}
	}
	return last
}

func (s *Sim) post(ctx context.Context, hook string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(wire.SignHeader, wire.Sign(s.cfg.AppSecret, body))
	resp, err := s.env.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var ack wire.Ack
	if resp.StatusCode/100 != 2 || json.Unmarshal(b, &ack) != nil || ack != wire.Acknowledged {
		return fmt.Errorf("kuaishou event answered %d %s, want 2xx {\"result\":1}", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return nil
}
