// Package weibo simulates Weibo's fan service platform (粉丝服务平台) for one fan service account,
// mounted on a sim.Env:
//
//	POST /sandbox/weibo/2/messages/reply.json   op "messages/reply"   the active reply
//
// and, towards the connector, the platform's side of the callback (pkg/wire/weibo): VerifyURL
// makes the developer-mode URL check (GET <hook>?signature&timestamp&nonce&echostr, the answer
// must be echostr), Push POSTs a signed push as Weibo does (timestamp in milliseconds, a fresh
// nonce, JSON body) and retries it, three attempts in all, until the connector answers 2xx.
//
// The reply API takes Weibo's form (access_token in the form or the query, receiver_id, type,
// data = URL-encoded JSON), and answers as Weibo's API does (HTTP 4xx with
// {"error","error_code","request"}): 21332 for another access_token, 10008 for a missing or
// malformed parameter or a text of 300 characters or more, 20118 (the simulator's code; Weibo
// documents none) for a fan who has not written, followed, clicked or scanned within 48 h, or
// who unfollowed since. A reply that passes is recorded (sim.Env.Record) and answered with a
// direct message's fields {id, idstr, created_at, recipient_id}.
//
// Injected faults (sim.Fault.Code): "" is HTTP 500 with error_code 10001 (system error); a
// status ("503", "429:<s>") answers that status, 429 with error_code 10023; "processed",
// "processed_drop" do the reply and lose the answer (sim.Processed).
//
// Customers: Weibo gives no phone in pushes, so a simulated customer on Weibo is only a uid
// (UID, derived from the customer): the unifier sees a new customer unless the conversation
// links them.
package weibo

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
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

	wire "github.com/omnibus-dev/omnibus/pkg/wire/weibo"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

// Vendor is the simulator's name under /sandbox/.
const Vendor = "weibo"

// OpReply is the op of the active reply (fault key "weibo messages/reply").
const OpReply = "messages/reply"

// Connector is the connector's name: pushes go to <hook base>/weibo/callback.
const Connector = "weibo"

// Config configures the simulated account. Zero fields take the defaults shown.
type Config struct {
	// AppSecret signs the callbacks (the connector's WEIBO_APP_SECRET). Required.
	AppSecret string
	// AccessToken is the token the reply API accepts (the connector's WEIBO_ACCESS_TOKEN). Required.
	AccessToken string
	// AccountUID is the fan service account's uid, the pushes' receiver_id. Default 1902538057.
	AccountUID int64
	// RetryDelay is the wait before a push is retried. Default 1s.
	RetryDelay time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Sim is the simulated platform.
type Sim struct {
	env *sim.Env
	cfg Config
	mu  sync.Mutex
	// last is each fan's last message (or follow, click, scan) time; unfollowed closes it.
	last       map[int64]time.Time
	unfollowed map[int64]bool
	seq        atomic.Int64
}

// New mounts the simulator on env.
func New(env *sim.Env, cfg Config) (*Sim, error) {
	if cfg.AppSecret == "" || cfg.AccessToken == "" {
		return nil, errors.New("weibo sandbox: AppSecret and AccessToken are required")
	}
	if cfg.AccountUID == 0 {
		cfg.AccountUID = 1902538057
	}
	if cfg.RetryDelay == 0 {
		cfg.RetryDelay = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Sim{env: env, cfg: cfg, last: map[int64]time.Time{}, unfollowed: map[int64]bool{}}
	s.seq.Store(4_000_000_000)
	env.Handle(sim.Route{Vendor: Vendor, Op: OpReply, Pattern: "POST " + wire.ReplyPath, Handler: s.reply,
		Fail: sim.Processed(s.reply, s.fail)})
	return s, nil
}

// UID is customer c's Weibo uid: deterministic, in the 10-digit range of real uids.
func UID(c sim.Customer) int64 {
	sum := sha256.Sum256([]byte("weibo:" + c.Phone + ":" + strconv.Itoa(c.ID)))
	return 5_000_000_000 + int64(binary.BigEndian.Uint32(sum[:4])) // < 2^33
}

// Name is the omnibus channel: the Sim is the customers' Weibo (sim.Channel).
func (s *Sim) Name() string { return Connector }

// Write delivers text from c as a private message push.
func (s *Sim) Write(ctx context.Context, c sim.Customer, text string) error {
	return s.Push(ctx, s.Text(UID(c), text))
}

// Text returns a text push from uid, created now.
func (s *Sim) Text(uid int64, text string) wire.Push {
	return wire.Push{Type: wire.TypeText, ReceiverID: s.cfg.AccountUID, SenderID: uid,
		CreatedAt: s.cfg.Now().Format(wire.CreatedAtLayout), Text: text}
}

// Push POSTs p to the connector's callback, signed, until it answers 2xx (three attempts). The
// fan's reply window follows p (a message, follow, click or scan opens it; an unfollow closes it).
func (s *Sim) Push(ctx context.Context, p wire.Push) error {
	s.note(p)
	body, err := json.Marshal(p)
	if err != nil {
		return err
	}
	hook := s.env.HookURL(Connector, "/callback")
	if s.env.HookBase == "" {
		return errors.New("weibo sandbox: no hook base to push to")
	}
	var last error
	for attempt := range 3 {
		if attempt > 0 && !sim.Sleep(ctx, s.cfg.RetryDelay) {
			return errors.Join(last, ctx.Err())
		}
		last = s.post(ctx, hook, body)
		if last == nil {
			return nil
		}
	}
	return last
}

func (s *Sim) post(ctx context.Context, hook string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second) // Weibo's deadline
	defer cancel()
	q := wire.SignQuery(s.cfg.AppSecret, s.cfg.Now(), nonce(), "")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook+"?"+q.Encode(), strings.NewReader(string(body)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.env.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("weibo push answered %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return nil
}

// VerifyURL makes the developer-mode URL check against the connector's callback.
func (s *Sim) VerifyURL(ctx context.Context) error {
	echo := strconv.FormatUint(rand.Uint64(), 36) //nolint:gosec // a test value
	q := wire.SignQuery(s.cfg.AppSecret, s.cfg.Now(), nonce(), echo)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.env.HookURL(Connector, "/callback")+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := s.env.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK || string(b) != echo {
		return fmt.Errorf("weibo URL verification: answered %d %q, want 200 %q", resp.StatusCode, b, echo)
	}
	return nil
}

func nonce() string { return strconv.FormatUint(rand.Uint64()%1e8, 10) } //nolint:gosec // Weibo's nonces are 8 digits

// note updates the fan's reply window for p.
func (s *Sim) note(p wire.Push) {
	at, err := time.Parse(wire.CreatedAtLayout, p.CreatedAt)
	if err != nil {
		at = s.cfg.Now()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case p.Type == wire.TypeEvent && p.Data.Subtype == wire.EventUnfollow:
		s.unfollowed[p.SenderID] = true
	case p.Type == wire.TypeEvent && p.Data.Subtype == wire.EventUnsubscribe, p.Type == wire.TypeMention:
	default:
		if at.After(s.last[p.SenderID]) {
			s.last[p.SenderID] = at
		}
		if p.Type == wire.TypeEvent && (p.Data.Subtype == wire.EventFollow || p.Data.Subtype == wire.EventScanFollow) {
			delete(s.unfollowed, p.SenderID)
		}
	}
}

// Saw opens uid's reply window at at, as if the fan had written then without a push reaching
// the connector (a fan who wrote before the connector was deployed).
func (s *Sim) Saw(uid int64, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if at.After(s.last[uid]) {
		s.last[uid] = at
	}
	delete(s.unfollowed, uid)
}

// Replies returns the replies accepted so far.
func (s *Sim) Replies() []sim.Record {
	return s.env.Records(sim.Filter{Vendor: Vendor, Op: OpReply})
}

func (s *Sim) reply(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.refuse(w, r, http.StatusBadRequest, wire.CodeParam, "param error, see doc for more info")
		return
	}
	token := r.Form.Get("access_token") // the form, or the query as in Weibo's curl example
	if subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.AccessToken)) != 1 {
		s.refuse(w, r, http.StatusUnauthorized, wire.CodeInvalidToken, "invalid_access_token")
		return
	}
	rep, err := wire.ParseReply(r.Form)
	if err != nil || rep.Type != wire.TypeText {
		s.refuse(w, r, http.StatusBadRequest, wire.CodeParam, "param error, see doc for more info")
		return
	}
	var text wire.TextData
	if err := json.Unmarshal(rep.Data, &text); err != nil || text.Text == "" || utf8.RuneCountInString(text.Text) >= wire.MaxTextRunes {
		s.refuse(w, r, http.StatusBadRequest, wire.CodeParam, "param error: data.text must be 1..299 characters")
		return
	}
	now := s.cfg.Now()
	s.mu.Lock()
	last, unfollowed := s.last[rep.ReceiverID], s.unfollowed[rep.ReceiverID]
	s.mu.Unlock()
	if unfollowed || last.IsZero() || now.Sub(last) > wire.ReplyWindow {
		s.env.Record(Vendor, OpReply, strconv.FormatInt(rep.ReceiverID, 10), text, errors.New("outside the 48 h window"))
		s.refuse(w, r, http.StatusBadRequest, wire.CodeOutsideWindow, "the fan has not messaged the account within 48 hours")
		return
	}
	id := s.seq.Add(1)
	s.env.Record(Vendor, OpReply, strconv.FormatInt(rep.ReceiverID, 10), text, nil)
	sim.WriteJSON(w, http.StatusOK, "application/json;charset=UTF-8", wire.Sent{ID: id, IDStr: strconv.FormatInt(id, 10),
		CreatedAt: now.Format(wire.CreatedAtLayout), RecipientID: rep.ReceiverID})
}

func (s *Sim) refuse(w http.ResponseWriter, r *http.Request, status, code int, msg string) {
	sim.WriteJSON(w, status, "application/json;charset=UTF-8", wire.Error{Error: msg, ErrorCode: code, Request: r.URL.Path})
}

func (s *Sim) fail(w http.ResponseWriter, r *http.Request, code string) {
	status, retryAfter := sim.FaultStatus(code)
	c := 10001
	if status == http.StatusTooManyRequests {
		c = wire.CodeRateLimit
		w.Header().Set("Retry-After", retryAfter)
	}
	s.refuse(w, r, status, c, "injected fault")
}
