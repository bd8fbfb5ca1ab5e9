// Package wecom simulates the WeCom 微信客服 (kf) API and its WeChat customers, mounted on a
// sim.Env under /sandbox/wecom:
//
//	GET  /sandbox/wecom/cgi-bin/gettoken?corpid=..&corpsecret=..     op "gettoken"
//	POST /sandbox/wecom/cgi-bin/kf/sync_msg?access_token=..          op "kf/sync_msg"
//	POST /sandbox/wecom/cgi-bin/kf/send_msg?access_token=..          op "kf/send_msg"
//
// Every answer is HTTP 200 with WeCom's {"errcode","errmsg",...} body, as WeCom answers: 41002/40013
// (missing/invalid corpid), 41004/40001 (missing/invalid secret), 41001/40014/42001 (missing,
// invalid, expired access_token), 47001 (body is not JSON), 40058 (invalid parameter), 95000
// (invalid open_kfid), 95007 (invalid sync_msg token), 40096 (unknown external_userid), 40008
// (invalid msgtype), 44004/45002 (empty/too long text), 95018 (session closed or older than 48 h),
// 95001 (more than 5 messages since the customer's last one). Injected faults (sim.Fault.Code) are
// rendered the same way: "42001" answers {"errcode":42001,...}; "" is -1 system busy; "http_503"
// answers a bare HTTP 503 instead (a gateway failure).
//
// The customer side is a sim.Channel (Name "wechatkf"): Write appends the customer's message to
// the kf account's sync_msg queue and POSTs the encrypted, signed kf_msg_or_event callback to
// env.HookURL("wechatkf", "/callback") (HookBase + "/wechatkf/callback"), retrying up to 3
// times on a non-2xx answer or no answer within 5 s, as WeCom does. A customer's first contact
// is preceded by an enter_session event; when Config.SceneKey is set its scene_param carries the
// customer's phone signed as the business's app would sign it (wecom.SignScenePhone), which the
// connector turns into a phone identity.
//
// Simplifications, each chosen where WeCom's behaviour is not documented: gettoken returns the
// still valid token with its remaining lifetime; messages sent with send_msg are not echoed into
// sync_msg; a send_msg msgid is not deduplicated; the 48-hour window is enforced synchronously
// with 95018 rather than by a later msg_send_fail event; cursors are opaque and, from an earlier
// sandbox process, start again at the oldest kept message.
package wecom

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	wire "github.com/omnibus-dev/omnibus/pkg/wire/wecom"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

// Vendor is the simulator's name under /sandbox/.
const Vendor = "wecom"

// Route ops (fault keys are "wecom <op>").
const (
	OpGetToken = "gettoken"
	OpSyncMsg  = "kf/sync_msg"
	OpSendMsg  = "kf/send_msg"
)

// Config configures the simulated WeCom corp and its one kf account. Zero fields take the
// defaults shown.
type Config struct {
	// CorpID is the corp id (the callbacks' receive id). Required.
	CorpID string
	// Secret is the kf app's corpsecret. Required.
	Secret string
	// Token and EncodingAESKey are the callback settings (the connector's WECHATKF_TOKEN and
	// WECHATKF_AES_KEY). Required.
	Token          string
	EncodingAESKey string
	// OpenKfID is the simulated kf account. Default "wkSandboxKf0000000000000000000001".
	OpenKfID string
	// SceneKey, when set, is the key the business's app signs a customer's phone into the kf
	// link's scene_param with (the connector's WECHATKF_SCENE_KEY).
	SceneKey string
	// TokenTTL is the access_token lifetime. Default 7200s.
	TokenTTL time.Duration
	// MsgTokenTTL is the lifetime of a callback's sync_msg Token. Default 10m.
	MsgTokenTTL time.Duration
	// CallbackPath is the connector's callback path: callbacks go to
	// env.HookURL("wechatkf", CallbackPath). Default "/callback".
	CallbackPath string
	// CallbackRetries is how often a callback is retried after a failure. Default 3; -1 none.
	CallbackRetries int
	// CallbackTimeout bounds one callback attempt. Default 5s.
	CallbackTimeout time.Duration
	// RetryDelay is the wait before a callback retry. Default 1s.
	RetryDelay time.Duration
	// MaxKept bounds the queued messages kept for sync_msg (oldest dropped). Default 100000.
	MaxKept int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.OpenKfID == "" {
		c.OpenKfID = "wkSandboxKf0000000000000000000001"
	}
	if c.TokenTTL == 0 {
		c.TokenTTL = 7200 * time.Second
	}
	if c.MsgTokenTTL == 0 {
		c.MsgTokenTTL = 10 * time.Minute
	}
	if c.CallbackPath == "" {
		c.CallbackPath = "/callback"
	}
	if c.CallbackRetries == 0 {
		c.CallbackRetries = 3
	} else if c.CallbackRetries < 0 {
		c.CallbackRetries = 0
	}
	if c.CallbackTimeout == 0 {
		c.CallbackTimeout = 5 * time.Second
	}
	if c.RetryDelay == 0 {
		c.RetryDelay = time.Second
	}
	if c.MaxKept == 0 {
		c.MaxKept = 100000
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Sim is the simulated WeCom kf API and its customers. It implements sim.Channel.
type Sim struct {
	env    *sim.Env
	cfg    Config
	crypto *wire.Crypto
	client *http.Client

	mu        sync.Mutex
	token     string    // the current access_token
	tokenExp  time.Time // its expiry
	known     map[string]time.Time
	msgTokens map[string]time.Time
	queue     []json.RawMessage // sync_msg items; queue[i] is at position base+i
	base      uint32
	epoch     uint32
	cursorKey []byte
	msgSeq    uint64
	sessions  map[string]*session
}

type session struct {
	entered     bool
	lastInbound time.Time
	sentSince   int
	closed      bool
}

var _ sim.Channel = (*Sim)(nil)

// New validates cfg and mounts the simulator's routes on env.
func New(env *sim.Env, cfg Config) (*Sim, error) {
	cfg.setDefaults()
	switch {
	case cfg.CorpID == "":
		return nil, errors.New("wecom sandbox: CorpID is required")
	case cfg.Secret == "":
		return nil, errors.New("wecom sandbox: Secret is required")
	}
	c, err := wire.NewCrypto(cfg.Token, cfg.EncodingAESKey, cfg.CorpID)
	if err != nil {
		return nil, fmt.Errorf("wecom sandbox: %w", err)
	}
	// Cursors are MACed with a key derived from the secret (stable across sandbox restarts);
	// the epoch tells this process's cursors from an earlier one's.
	key := sha256.Sum256([]byte("sandbox-cursor\x00" + cfg.CorpID + "\x00" + cfg.Secret))
	var ep [4]byte
	if _, err := rand.Read(ep[:]); err != nil {
		return nil, err
	}
	seqBase, err := rand.Int(rand.Reader, big.NewInt(1e18))
	if err != nil {
		return nil, err
	}
	s := &Sim{env: env, cfg: cfg, crypto: c, client: env.Client, known: map[string]time.Time{},
		msgTokens: map[string]time.Time{}, epoch: binary.BigEndian.Uint32(ep[:]), cursorKey: key[:],
		msgSeq: 4e18 + seqBase.Uint64(), sessions: map[string]*session{}}
	if s.client == nil {
		s.client = http.DefaultClient
	}
	env.Handle(sim.Route{Vendor: Vendor, Op: OpGetToken, Pattern: "GET " + wire.PathGetToken, Handler: s.getToken, Fail: s.fail})
	env.Handle(sim.Route{Vendor: Vendor, Op: OpSyncMsg, Pattern: "POST " + wire.PathSyncMsg, Handler: s.syncMsg, Fail: s.fail})
	env.Handle(sim.Route{Vendor: Vendor, Op: OpSendMsg, Pattern: "POST " + wire.PathSendMsg, Handler: s.sendMsg, Fail: s.fail})
	return s, nil
}

// Config returns the simulator's configuration with its defaults filled in.
func (s *Sim) Config() Config { return s.cfg }

// Name is the omnibus channel the simulated customers use.
func (s *Sim) Name() string { return connectorName }

// Write delivers text from customer c: an enter_session event first if c never wrote before,
// then the text message, then the signed callback (retried as WeCom retries). It returns nil
// once the connector answered a callback attempt with 2xx.
func (s *Sim) Write(ctx context.Context, c sim.Customer, text string) error {
	uid := externalUserID(c)
	s.mu.Lock()
	if ss := s.sessions[uid]; ss == nil || !ss.entered {
		param := ""
		if s.cfg.SceneKey != "" && wire.ValidE164(c.Phone) {
			param = wire.SignScenePhone([]byte(s.cfg.SceneKey), c.Phone)
		}
		s.appendLocked(wire.Message{Origin: wire.OriginSystem, MsgType: "event", Event: &wire.Event{
			EventType: wire.EventEnterSession, OpenKfID: s.cfg.OpenKfID, ExternalUserID: uid,
			Scene: "app", SceneParam: param, WelcomeCode: randomHex(16)}})
	}
	s.appendLocked(wire.Message{ExternalUserID: uid, Origin: wire.OriginCustomer, MsgType: "text",
		Text: &wire.Text{Content: text}})
	s.mu.Unlock()
	return s.Notify(ctx)
}

func externalUserID(c sim.Customer) string {
	if c.WeChatID != "" {
		return c.WeChatID
	}
	return fmt.Sprintf("wmSimCustomer%06d", c.ID)
}

// Deliver queues m for sync_msg as WeCom would: it fills msgid, send_time, origin (3 for a
// customer message, 4 for an event) and open_kfid (events carry theirs inside the event), and
// returns the queued message. It does not notify; call Notify or CallbackRequest.
func (s *Sim) Deliver(m wire.Message) wire.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appendLocked(m)
}

func (s *Sim) appendLocked(m wire.Message) wire.Message {
	if m.MsgID == "" {
		s.msgSeq++
		m.MsgID = "from_msgid_" + strconv.FormatUint(s.msgSeq, 10)
	}
	if m.SendTime == 0 {
		m.SendTime = s.cfg.Now().Unix()
	}
	if m.MsgType == "event" {
		if m.Origin == 0 {
			m.Origin = wire.OriginSystem
		}
		if m.Event != nil && m.Event.OpenKfID == "" {
			m.Event.OpenKfID = s.cfg.OpenKfID
		}
	} else {
		if m.Origin == 0 {
			m.Origin = wire.OriginCustomer
		}
		if m.OpenKfID == "" {
			m.OpenKfID = s.cfg.OpenKfID
		}
	}
	raw, _ := json.Marshal(m) // a Message always marshals
	s.pushLocked(raw, m)
	return m
}

// DeliverJSON queues one raw msg_list item (a JSON object) as it is, for shapes wire.Message
// does not model (new msgtypes, odd payloads). Customer messages in it count for the session.
func (s *Sim) DeliverJSON(item json.RawMessage) error {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(item, &probe); err != nil {
		return fmt.Errorf("wecom sandbox: msg_list item must be a JSON object: %w", err)
	}
	m, _ := wire.DecodeMessage(item) // best effort, for the session bookkeeping
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pushLocked(append(json.RawMessage(nil), item...), m)
	return nil
}

func (s *Sim) pushLocked(raw json.RawMessage, m wire.Message) {
	s.queue = append(s.queue, raw)
	if over := len(s.queue) - s.cfg.MaxKept; over > 0 {
		s.queue = append(s.queue[:0:0], s.queue[over:]...)
		s.base += uint32(over)
	}
	uid, _ := m.Customer()
	if uid == "" {
		return
	}
	ss := s.sessions[uid]
	if ss == nil {
		ss = &session{}
		s.sessions[uid] = ss
	}
	if m.Origin == wire.OriginCustomer || m.MsgType == "event" && m.Event != nil && m.Event.EventType == wire.EventEnterSession {
		ss.entered = true
		ss.lastInbound = time.Unix(m.SendTime, 0)
		ss.sentSince = 0
		ss.closed = false
	}
}

// Queued returns how many messages sync_msg has kept in all.
func (s *Sim) Queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// CloseSession ends the customer's session: sends answer 95018 until the customer writes again.
func (s *Sim) CloseSession(externalUserID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss := s.sessions[externalUserID]; ss != nil {
		ss.closed = true
	}
}

// ExpireAccessTokens makes every issued access_token expired (42001) at once.
func (s *Sim) ExpireAccessTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	for t := range s.known {
		s.known[t] = now
	}
	s.tokenExp = now
}

// CallbackRequest returns the signed kf_msg_or_event callback WeCom would POST now, with a fresh
// sync_msg Token, addressed to env.HookURL("wechatkf", CallbackPath).
func (s *Sim) CallbackRequest(ctx context.Context) (*http.Request, error) {
	body, q, err := s.callback()
	if err != nil {
		return nil, err
	}
	return s.newCallbackRequest(ctx, body, q)
}

func (s *Sim) callback() ([]byte, url.Values, error) {
	now := s.cfg.Now()
	tok := "ENC" + randomToken(44)
	s.mu.Lock()
	s.msgTokens[tok] = now.Add(s.cfg.MsgTokenTTL)
	for t, exp := range s.msgTokens {
		if !now.Before(exp) {
			delete(s.msgTokens, t)
		}
	}
	s.mu.Unlock()
	plain := wire.MarshalKfNotice(s.cfg.CorpID, now.Unix(), tok, s.cfg.OpenKfID)
	ts, nonce := strconv.FormatInt(now.Unix(), 10), strconv.FormatUint(randomUint(1e10), 10)
	enc, sig, err := s.crypto.Seal(plain, ts, nonce)
	if err != nil {
		return nil, nil, err
	}
	body := wire.Envelope{ToUserName: s.cfg.CorpID, Encrypt: enc}.Marshal()
	return body, url.Values{"msg_signature": {sig}, "timestamp": {ts}, "nonce": {nonce}}, nil
}

func (s *Sim) newCallbackRequest(ctx context.Context, body []byte, q url.Values) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.callbackURL()+"?"+q.Encode(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Set("User-Agent", "Mozilla/4.0 (sandbox; WeCom callback)")
	return req, nil
}

// Notify POSTs one kf_msg_or_event callback and retries it (same bytes) up to CallbackRetries
// times while the connector does not answer 2xx within CallbackTimeout. It returns nil on a 2xx,
// else the last failure.
func (s *Sim) Notify(ctx context.Context) error {
	body, q, err := s.callback()
	if err != nil {
		return err
	}
	var last error
	for attempt := 0; attempt <= s.cfg.CallbackRetries; attempt++ {
		if attempt > 0 {
			t := time.NewTimer(s.cfg.RetryDelay)
			select {
			case <-ctx.Done():
				t.Stop()
				return errors.Join(last, ctx.Err())
			case <-t.C:
			}
		}
		if last = s.post(ctx, body, q); last == nil {
			return nil
		}
		if s.env.Log != nil {
			s.env.Log.Debug("wecom sandbox: callback failed", "attempt", attempt+1, "err", last)
		}
	}
	return fmt.Errorf("wecom sandbox: callback to %s failed after %d attempts: %w", s.callbackURL(), s.cfg.CallbackRetries+1, last)
}

func (s *Sim) callbackURL() string { return s.env.HookURL(connectorName, s.cfg.CallbackPath) }

// connectorName is the connector that WeCom's callbacks are for (and the channel customers use).
const connectorName = "wechatkf"

func (s *Sim) post(ctx context.Context, body []byte, q url.Values) error {
	actx, cancel := context.WithTimeout(ctx, s.cfg.CallbackTimeout)
	defer cancel()
	req, err := s.newCallbackRequest(actx, body, q)
	if err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("connector answered %d: %s", resp.StatusCode, strings.TrimSpace(string(answer)))
	}
	return nil
}

// ---- API handlers ----

func (s *Sim) writeCode(w http.ResponseWriter, r *http.Request, code int, detail string) {
	msg := wire.ErrorText(code)
	if detail != "" {
		msg += ": " + detail
	}
	if code != wire.CodeOK {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		msg = fmt.Sprintf("%s, hint: [%d%s], from ip: %s, more info at https://open.work.weixin.qq.com/devtool/query?e=%d",
			msg, s.cfg.Now().Unix(), randomHex(4), host, code)
	}
	writeJSON(w, wire.Response{ErrCode: code, ErrMsg: msg})
}

func writeJSON(w http.ResponseWriter, v any) {
	sim.WriteJSON(w, http.StatusOK, "application/json; charset=UTF-8", v) // errors too: WeCom answers 200 with an errcode
}

// fail renders an injected fault: "" → -1 system busy, "http_NNN" → a bare HTTP NNN, a number →
// that errcode.
func (s *Sim) fail(w http.ResponseWriter, r *http.Request, code string) {
	if code == "" {
		s.writeCode(w, r, wire.CodeSystemBusy, "")
		return
	}
	if rest, ok := strings.CutPrefix(code, "http_"); ok {
		if n, err := strconv.Atoi(rest); err == nil && n >= 400 && n <= 599 {
			http.Error(w, http.StatusText(n), n)
			return
		}
	}
	n, err := strconv.Atoi(code)
	if err != nil {
		s.writeCode(w, r, wire.CodeSystemBusy, "injected fault "+code)
		return
	}
	s.writeCode(w, r, n, "")
}

func (s *Sim) getToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	corp, secret := q.Get("corpid"), q.Get("corpsecret")
	switch {
	case corp == "":
		s.writeCode(w, r, wire.CodeMissingCorpID, "")
		return
	case !hmac.Equal([]byte(corp), []byte(s.cfg.CorpID)):
		s.writeCode(w, r, wire.CodeInvalidCorpID, "")
		return
	case secret == "":
		s.writeCode(w, r, wire.CodeMissingSecret, "")
		return
	case !hmac.Equal([]byte(secret), []byte(s.cfg.Secret)):
		s.writeCode(w, r, wire.CodeInvalidSecret, "")
		return
	}
	now := s.cfg.Now()
	s.mu.Lock()
	if s.token == "" || !now.Before(s.tokenExp) {
		s.token = randomToken(64)
		s.tokenExp = now.Add(s.cfg.TokenTTL)
		s.known[s.token] = s.tokenExp
	}
	tok, left := s.token, s.tokenExp.Sub(now)
	s.mu.Unlock()
	writeJSON(w, wire.TokenResponse{Response: wire.NewResponse(0), AccessToken: tok, ExpiresIn: int(left / time.Second)})
}

// checkToken answers 41001/40014/42001 for a missing, unknown or expired access_token.
func (s *Sim) checkToken(w http.ResponseWriter, r *http.Request) bool {
	tok := r.URL.Query().Get("access_token")
	if tok == "" {
		s.writeCode(w, r, wire.CodeMissingAccessToken, "")
		return false
	}
	s.mu.Lock()
	exp, ok := s.known[tok]
	s.mu.Unlock()
	switch {
	case !ok:
		s.writeCode(w, r, wire.CodeInvalidAccessToken, "")
		return false
	case !s.cfg.Now().Before(exp):
		s.writeCode(w, r, wire.CodeAccessTokenExpired, "")
		return false
	}
	return true
}

func (s *Sim) readJSON(w http.ResponseWriter, r *http.Request, v any) ([]byte, bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || len(bytes.TrimSpace(body)) == 0 || json.Unmarshal(body, v) != nil {
		s.writeCode(w, r, wire.CodeDataFormat, "Warning: wrong json format.")
		return nil, false
	}
	return body, true
}

func (s *Sim) syncMsg(w http.ResponseWriter, r *http.Request) {
	if !s.checkToken(w, r) {
		return
	}
	var req wire.SyncMsgRequest
	if _, ok := s.readJSON(w, r, &req); !ok {
		return
	}
	now := s.cfg.Now()
	switch {
	case req.OpenKfID != "" && req.OpenKfID != s.cfg.OpenKfID:
		s.writeCode(w, r, wire.CodeInvalidOpenKfID, "")
		return
	case len(req.Cursor) > wire.MaxCursorLen:
		s.writeCode(w, r, wire.CodeInvalidParameter, "cursor exceed max length 64")
		return
	case len(req.Token) > wire.MaxMsgTokenLen:
		s.writeCode(w, r, wire.CodeInvalidParameter, "token exceed max length 128")
		return
	case req.Limit < 0:
		s.writeCode(w, r, wire.CodeInvalidParameter, "limit")
		return
	}
	limit := req.Limit
	if limit == 0 || limit > wire.MaxSyncLimit {
		limit = wire.MaxSyncLimit
	}
	code, resp := s.page(req, limit, now)
	if code != wire.CodeOK {
		s.writeCode(w, r, code, resp.ErrMsg)
		return
	}
	writeJSON(w, resp)
}

// page reads the sync_msg page a request asks for.
func (s *Sim) page(req wire.SyncMsgRequest, limit int, now time.Time) (int, wire.SyncMsgResponse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if req.Token != "" {
		if exp, ok := s.msgTokens[req.Token]; !ok || !now.Before(exp) {
			return wire.CodeInvalidMsgToken, wire.SyncMsgResponse{}
		}
	}
	pos, ok := s.decodeCursor(req.Cursor)
	if !ok {
		return wire.CodeInvalidParameter, wire.SyncMsgResponse{Response: wire.Response{ErrMsg: "invalid cursor"}}
	}
	total := uint64(s.base) + uint64(len(s.queue))
	end := min(uint64(pos)+uint64(limit), total)
	items := make([]json.RawMessage, 0, end-uint64(pos))
	for p := uint64(pos); p < end; p++ {
		items = append(items, s.queue[p-uint64(s.base)])
	}
	more := 0
	if end < total {
		more = 1
	}
	return wire.CodeOK, wire.SyncMsgResponse{Response: wire.NewResponse(0), NextCursor: s.encodeCursor(uint32(end)), HasMore: more, MsgList: items}
}

// encodeCursor: base64url(epoch | position | 6-byte MAC), 19 characters like WeCom's.
func (s *Sim) encodeCursor(pos uint32) string {
	var b [14]byte
	binary.BigEndian.PutUint32(b[0:4], s.epoch)
	binary.BigEndian.PutUint32(b[4:8], pos)
	m := hmac.New(sha256.New, s.cursorKey)
	m.Write(b[:8])
	copy(b[8:], m.Sum(nil)[:6])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// decodeCursor returns the queue position a cursor points at (s.mu held): "" and cursors of an
// earlier sandbox process start at the oldest kept message; a forged cursor is invalid.
func (s *Sim) decodeCursor(c string) (uint32, bool) {
	if c == "" {
		return s.base, true
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) != 14 {
		return 0, false
	}
	m := hmac.New(sha256.New, s.cursorKey)
	m.Write(b[:8])
	if !hmac.Equal(m.Sum(nil)[:6], b[8:]) {
		return 0, false
	}
	if binary.BigEndian.Uint32(b[0:4]) != s.epoch {
		return s.base, true
	}
	pos := binary.BigEndian.Uint32(b[4:8])
	end := s.base + uint32(len(s.queue))
	return max(s.base, min(pos, end)), true
}

func (s *Sim) sendMsg(w http.ResponseWriter, r *http.Request) {
	if !s.checkToken(w, r) {
		return
	}
	var req wire.SendMsgRequest
	body, ok := s.readJSON(w, r, &req)
	if !ok {
		return
	}
	if code, detail := s.validateSend(req); code != wire.CodeOK {
		s.writeCode(w, r, code, detail)
		return
	}
	now := s.cfg.Now()
	s.mu.Lock()
	ss := s.sessions[req.ToUser]
	code := wire.CodeOK
	switch {
	case ss == nil || !ss.entered:
		code = wire.CodeInvalidExternalUserID
	case ss.closed || now.Sub(ss.lastInbound) > 48*time.Hour:
		code = wire.CodeSessionState
	case ss.sentSince >= 5:
		code = wire.CodeSendLimit
	default:
		ss.sentSince++
	}
	s.mu.Unlock()
	if code != wire.CodeOK {
		s.writeCode(w, r, code, "")
		return
	}
	msgID := req.MsgID
	if msgID == "" {
		msgID = randomToken(32)
	}
	s.env.Record(Vendor, OpSendMsg, req.ToUser, json.RawMessage(body), nil)
	writeJSON(w, wire.SendMsgResponse{Response: wire.NewResponse(0), MsgID: msgID})
}

// validateSend checks a send_msg body as WeCom does, before any session rule.
func (s *Sim) validateSend(req wire.SendMsgRequest) (int, string) {
	switch {
	case req.ToUser == "":
		return wire.CodeInvalidParameter, "touser missing"
	case req.OpenKfID == "":
		return wire.CodeInvalidParameter, "open_kfid missing"
	case req.OpenKfID != s.cfg.OpenKfID:
		return wire.CodeInvalidOpenKfID, ""
	case !wire.ValidSendMsgID(req.MsgID):
		return wire.CodeInvalidParameter, "msgid must be at most 32 bytes of [0-9a-zA-Z_-]"
	}
	media := func(m *wire.Media) (int, string) {
		if m == nil || m.MediaID == "" {
			return wire.CodeInvalidParameter, "media_id missing"
		}
		return wire.CodeOK, ""
	}
	switch req.MsgType {
	case "text":
		switch {
		case req.Text == nil || req.Text.Content == "":
			return wire.CodeEmptyContent, ""
		case len(req.Text.Content) > 2048:
			return wire.CodeContentTooLong, ""
		}
	case "image":
		return media(req.Image)
	case "voice":
		return media(req.Voice)
	case "video":
		return media(req.Video)
	case "file":
		return media(req.File)
	case "link":
		if req.Link == nil || req.Link.Title == "" || req.Link.URL == "" || req.Link.ThumbMediaID == "" {
			return wire.CodeInvalidParameter, "link needs title, url and thumb_media_id"
		}
	case "miniprogram":
		if m := req.MiniProgram; m == nil || m.AppID == "" || m.PagePath == "" || m.ThumbMediaID == "" {
			return wire.CodeInvalidParameter, "miniprogram needs appid, pagepath and thumb_media_id"
		}
	case "location":
		if req.Location == nil {
			return wire.CodeInvalidParameter, "location missing"
		}
	case "msgmenu", "business_card", "ca_link":
	default:
		return wire.CodeInvalidMsgType, ""
	}
	return wire.CodeOK, ""
}

func randomToken(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func randomHex(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

func randomUint(limit int64) uint64 {
	n, err := rand.Int(rand.Reader, big.NewInt(limit))
	if err != nil {
		return 0
	}
	return n.Uint64()
}
