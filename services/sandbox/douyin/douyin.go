// Package douyin simulates the Douyin open platform (抖音开放平台) for one enterprise account's
// private messages, mounted on a sim.Env:
//
//	POST /sandbox/douyin/im/send/msg/?open_id=<account>   op "im/send/msg"   the reply
//
// and, towards the connector, the platform's side of the webhook (pkg/wire/douyin):
// VerifyWebhook POSTs the signed verify_webhook event (the answer must be {"challenge":<the
// same number>}); Push POSTs a signed event (X-Douyin-Signature over the raw body, a Msg-Id
// header the same on every attempt, content a JSON-encoded string) and retries it, four
// attempts in all (Douyin: 3 retries), until the connector answers 2xx within 5 s.
//
// The reply API checks what Douyin checks: the access-token header (2190008 otherwise), the
// open_id query (the account), a JSON body whose msg_id is a message this user sent the account,
// whose conversation_id is that message's conversation and whose to_user_id is its sender
// (2100005 otherwise), a text of 1..1000 characters; then the window: the user's last message
// within 24 h (28003017 otherwise) and at most 6 replies since it (28003018 otherwise) — the two
// last codes are the simulator's (Douyin's are not in our notes). Answers are HTTP 200 with
// {"data":{"error_code",...},"extra":{...}}, as Douyin's open API answers.
//
// Injected faults (sim.Fault.Code): "" is HTTP 500 with error_code 2100009 (system error); a
// status ("503", "429:<s>") answers that status, 429 with error_code 2100004; "processed",
// "processed_drop" do the reply and lose the answer (sim.Processed).
//
// Customers: Douyin shows no phone, so a simulated customer on Douyin is an open_id derived
// from them (OpenID): the unifier sees a new customer unless the conversation links them.
package douyin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	wire "github.com/omnibus-dev/omnibus/pkg/wire/douyin"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

// Vendor is the simulator's name under /sandbox/.
const Vendor = "douyin"

// OpSend is the op of the reply (fault key "douyin im/send/msg").
const OpSend = "im/send/msg"

// Connector is the connector's name: events go to <hook base>/douyin/webhook.
const Connector = "douyin"

// Config configures the simulated account. Zero fields take the defaults shown.
type Config struct {
	// ClientKey is the app's client_key, in every event. Required.
	ClientKey string
	// ClientSecret signs the events (the connector's DOUYIN_CLIENT_SECRET). Required.
	ClientSecret string
	// AccessToken is the token the reply API accepts (the connector's DOUYIN_ACCESS_TOKEN). Required.
	AccessToken string
	// AccountOpenID is the enterprise account's open_id, the events' to_user_id.
	// Default "_000OmnibusSandboxEnterpriseAccount".
	AccountOpenID string
	// RetryDelay is the wait before an event is retried. Default 1s.
	RetryDelay time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// conversation is what the platform knows of a user's last message.
type conversation struct {
	msgID, conv string
	at          time.Time
	replies     int
}

// Sim is the simulated platform.
type Sim struct {
	env   *sim.Env
	cfg   Config
	mu    sync.Mutex
	users map[string]*conversation // by the user's open_id
	msgs  map[string]string        // server_message_id → sender open_id
	seq   atomic.Int64
}

// New mounts the simulator on env.
func New(env *sim.Env, cfg Config) (*Sim, error) {
	if cfg.ClientKey == "" || cfg.ClientSecret == "" || cfg.AccessToken == "" {
		return nil, errors.New("douyin sandbox: ClientKey, ClientSecret and AccessToken are required")
	}
	if cfg.AccountOpenID == "" {
		cfg.AccountOpenID = "_000OmnibusSandboxEnterpriseAccount"
	}
	if cfg.RetryDelay == 0 {
		cfg.RetryDelay = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Sim{env: env, cfg: cfg, users: map[string]*conversation{}, msgs: map[string]string{}}
	s.seq.Store(7_300_000_000_000_000_000)
	env.Handle(sim.Route{Vendor: Vendor, Op: OpSend, Pattern: "POST " + wire.SendPath, Handler: s.send,
		Fail: sim.Processed(s.send, s.fail)})
	return s, nil
}

// Account is the enterprise account's open_id.
func (s *Sim) Account() string { return s.cfg.AccountOpenID }

// OpenID is customer c's open_id towards the account: deterministic, shaped like Douyin's.
func OpenID(c sim.Customer) string {
	sum := sha256.Sum256([]byte("douyin:" + c.Phone + ":" + strconv.Itoa(c.ID)))
	return "_000" + hex.EncodeToString(sum[:16])
}

// Name is the omnibus channel: the Sim is the customers' Douyin (sim.Channel).
func (s *Sim) Name() string { return Connector }

// Write delivers text from c as a private message.
func (s *Sim) Write(ctx context.Context, c sim.Customer, text string) error {
	m := s.Text(OpenID(c), text)
	m.UserInfos = []wire.UserInfo{{OpenID: OpenID(c), NickName: c.Name}}
	return s.Receive(ctx, OpenID(c), m)
}

// Text returns a text message, created now, with a fresh server_message_id in the user's
// conversation.
func (s *Sim) Text(openID, text string) wire.Message {
	m := s.Message(openID, wire.TypeText)
	m.Text = text
	return m
}

// Message returns a message of type typ with no body, created now.
func (s *Sim) Message(openID, typ string) wire.Message {
	id := s.seq.Add(1)
	sum := sha256.Sum256([]byte(s.cfg.AccountOpenID + openID))
	return wire.Message{ConversationShortID: "@" + hex.EncodeToString(sum[:12]) + "==",
		ServerMessageID: wire.ID(strconv.FormatInt(id, 10)), ConversationType: 1,
		CreateTime: s.cfg.Now().UnixMilli(), MessageType: typ}
}

// Receive pushes im_receive_msg with m from openID to the account; the platform then allows
// replies to m.
func (s *Sim) Receive(ctx context.Context, openID string, m wire.Message) error {
	env, err := s.Envelope(wire.EventReceiveMsg, openID, m)
	if err != nil {
		return err
	}
	s.note(openID, m)
	return s.Push(ctx, env)
}

// Envelope wraps content (JSON-encoded as a string, as Douyin does) in an event from openID.
func (s *Sim) Envelope(event, openID string, content any) (wire.Envelope, error) {
	c, err := wire.Content(content)
	if err != nil {
		return wire.Envelope{}, err
	}
	return wire.Envelope{Event: event, FromUserID: openID, ToUserID: s.cfg.AccountOpenID, ClientKey: s.cfg.ClientKey,
		Content: c, LogID: strconv.FormatUint(rand.Uint64(), 16)}, nil //nolint:gosec // a log id
}

// Push POSTs env to the connector's webhook, signed, until it answers 2xx (four attempts, the
// same Msg-Id and body each time).
func (s *Sim) Push(ctx context.Context, env wire.Envelope) error {
	body, err := json.Marshal(env)
	if err != nil {
		return err
	}
	_, err = s.PushRaw(ctx, body)
	return err
}

// PushRaw POSTs body as an event and returns the connector's last answer body.
func (s *Sim) PushRaw(ctx context.Context, body []byte) ([]byte, error) {
	if s.env.HookBase == "" {
		return nil, errors.New("douyin sandbox: no hook base to push to")
	}
	hook := s.env.HookURL(Connector, "/webhook")
	msgID := strconv.FormatUint(rand.Uint64(), 36) //nolint:gosec // a delivery id
	var last error
	for attempt := range 4 {
		if attempt > 0 && !sim.Sleep(ctx, s.cfg.RetryDelay) {
			return nil, errors.Join(last, ctx.Err())
		}
		var answer []byte
		answer, last = s.post(ctx, hook, msgID, body)
		if last == nil {
			return answer, nil
		}
	}
	return nil, last
}

func (s *Sim) post(ctx context.Context, hook, msgID string, body []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second) // Douyin drops the connection after 5 s
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(wire.SignatureHeader, wire.Sign(s.cfg.ClientSecret, body))
	req.Header.Set(wire.MsgIDHeader, msgID)
	resp, err := s.env.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("douyin event answered %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return b, nil
}

// VerifyWebhook makes the console's URL check: a signed verify_webhook whose answer must be
// {"challenge":<the same number>}.
func (s *Sim) VerifyWebhook(ctx context.Context) error {
	challenge := rand.Int64N(1e9) //nolint:gosec // a test value
	body := fmt.Appendf(nil, `{"event":"verify_webhook","client_key":%q,"content":{"challenge":%d}}`, s.cfg.ClientKey, challenge)
	answer, err := s.PushRaw(ctx, body)
	if err != nil {
		return err
	}
	var got struct {
		Challenge json.Number `json:"challenge"`
	}
	if err := json.Unmarshal(answer, &got); err != nil || got.Challenge.String() != strconv.FormatInt(challenge, 10) {
		return fmt.Errorf("douyin webhook verification: answered %q, want {\"challenge\":%d}", answer, challenge)
	}
	return nil
}

// Saw opens openID's reply window at m, as if the user had written m without the event reaching
// the connector through Push (a test that posts the event itself).
func (s *Sim) Saw(openID string, m wire.Message) { s.note(openID, m) }

// note opens the user's reply window at m.
func (s *Sim) note(openID string, m wire.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs[string(m.ServerMessageID)] = openID
	at := m.CreatedAt()
	if at.IsZero() {
		at = s.cfg.Now()
	}
	if c := s.users[openID]; c != nil && c.at.After(at) {
		return
	}
	s.users[openID] = &conversation{msgID: string(m.ServerMessageID), conv: m.ConversationShortID, at: at}
}

// Replies returns the replies accepted so far.
func (s *Sim) Replies() []sim.Record {
	return s.env.Records(sim.Filter{Vendor: Vendor, Op: OpSend})
}

func (s *Sim) send(w http.ResponseWriter, r *http.Request) {
	if subtle.ConstantTimeCompare([]byte(r.Header.Get(wire.TokenHeader)), []byte(s.cfg.AccessToken)) != 1 {
		s.refuse(w, wire.CodeInvalidToken, "access_token无效或已过期")
		return
	}
	var req wire.SendRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if r.URL.Query().Get("open_id") != s.cfg.AccountOpenID || dec.Decode(&req) != nil || req.Scene != wire.SceneReply ||
		req.Content.MsgType != wire.MsgTypeText || req.Content.Text == nil {
		s.refuse(w, wire.CodeParam, "参数不合法: open_id, scene, content")
		return
	}
	text := req.Content.Text.Text
	if n := utf8.RuneCountInString(text); n == 0 || n > wire.MaxTextRunes {
		s.refuse(w, wire.CodeParam, "参数不合法: text must be 1..1000 characters")
		return
	}
	now := s.cfg.Now()
	s.mu.Lock()
	from := s.msgs[req.MsgID]
	c := s.users[req.ToUserID]
	var refuse error
	code := wire.CodeParam
	switch {
	case from == "" || from != req.ToUserID || c == nil:
		refuse = errors.New("msg_id is not a message from to_user_id")
	case req.ConversationID != c.conv:
		refuse = errors.New("conversation_id is not the user's conversation")
	case now.Sub(c.at) > wire.ReplyWindow:
		refuse, code = errors.New("outside the 24 h reply window"), wire.CodeOutsideWindow
	case c.replies >= wire.ReplyQuota:
		refuse, code = errors.New("reply quota used up until the user writes again"), wire.CodeQuota
	default:
		c.replies++
	}
	s.mu.Unlock()
	s.env.Record(Vendor, OpSend, req.ToUserID, req.Content, refuse)
	if refuse != nil {
		s.refuse(w, code, refuse.Error())
		return
	}
	id := strconv.FormatInt(s.seq.Add(1), 10)
	sim.WriteJSON(w, http.StatusOK, "application/json", wire.Response{Data: wire.ResponseData{MsgID: id},
		Extra: wire.Extra{LogID: logID(), Now: now.UnixMilli()}})
}

func logID() string { return strconv.FormatUint(rand.Uint64(), 16) } //nolint:gosec // a log id

func (s *Sim) refuse(w http.ResponseWriter, code int, msg string) {
	sim.WriteJSON(w, http.StatusOK, "application/json", wire.Response{Data: wire.ResponseData{ErrorCode: code, Description: msg},
		Extra: wire.Extra{ErrorCode: code, Description: msg, LogID: logID(), Now: s.cfg.Now().UnixMilli()}})
}

func (s *Sim) fail(w http.ResponseWriter, _ *http.Request, code string) {
	status, retryAfter := sim.FaultStatus(code)
	c := wire.CodeSystem
	if status == http.StatusTooManyRequests {
		c = wire.CodeRateLimit
		w.Header().Set("Retry-After", retryAfter)
	}
	sim.WriteJSON(w, status, "application/json", wire.Response{Data: wire.ResponseData{ErrorCode: c, Description: "injected fault"},
		Extra: wire.Extra{ErrorCode: c, Description: "injected fault", LogID: logID()}})
}
