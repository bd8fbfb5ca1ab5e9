// Package webchatsim is the simulated web chat visitors: a sim.Channel whose Write makes a
// simulated customer chat through the web chat widget's real WebSocket protocol (the frames
// documented in services/webchat/README.md), and which records every agent reply the visitors
// receive as sandbox record "webchat reply" (To = the customer's visitor id), so tests and the
// demo can see what the visitors saw.
//
// Each customer keeps one socket, opened on their first message and reused; when it drops the
// next Write reconnects and resumes from the last seq received, as the widget does. On a
// customer's first message the visitor also gives their phone, so the unifier joins them with
// their SMS and WeChat identities.
//
// The simulator is a second, independent client of the protocol (the widget's JavaScript is the
// first): it shares no code with the connector, only the documented frames and token scheme.
package webchatsim

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

// Vendor and Op name the sandbox records of replies received by visitors.
const (
	Vendor = "webchat"
	Op     = "reply"
)

// Options configure the simulated visitors.
type Options struct {
	// Secret is the connector's WEBCHAT_SECRET. With it each customer connects as
	// Customer.Visitor, its token signed as the connector signs it (the sandbox plays a site
	// that knows its visitors). Without it the connector issues the visitor ids, and which
	// customer has which id lives in this process only.
	Secret string
	// Origin is sent in the WebSocket handshake; default: the base URL (same origin).
	Origin string
	// AckTimeout bounds the wait for the connector's ack of a message (default 10s).
	AckTimeout time.Duration
	// Log, default slog.Default().
	Log *slog.Logger
}

// Channel is the simulated visitors of one connector.
type Channel struct {
	ws   string
	env  *sim.Env
	opts Options

	mu       sync.Mutex
	visitors map[string]*visitor
	closed   bool
	wg       sync.WaitGroup
	stop     func() bool
}

// New returns the simulated visitors of the web chat connector at base (e.g.
// http://127.0.0.1:8080, where /webchat/ws is). Sockets close when ctx ends or on Close.
func New(ctx context.Context, base string, env *sim.Env, opts Options) (*Channel, error) {
	base = strings.TrimRight(base, "/")
	var ws string
	switch {
	case strings.HasPrefix(base, "http://"):
		ws = "ws://" + strings.TrimPrefix(base, "http://")
	case strings.HasPrefix(base, "https://"):
		ws = "wss://" + strings.TrimPrefix(base, "https://")
	default:
		return nil, fmt.Errorf("webchatsim: base %q must be an http:// or https:// URL", base)
	}
	if opts.Origin == "" {
		opts.Origin = base
	}
	if opts.AckTimeout == 0 {
		opts.AckTimeout = 10 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	c := &Channel{ws: ws + "/webchat/ws", env: env, opts: opts, visitors: map[string]*visitor{}}
	c.stop = context.AfterFunc(ctx, func() { _ = c.Close() })
	return c, nil
}

// Name implements sim.Channel.
func (c *Channel) Name() string { return "webchat" }

// Close closes every visitor's socket and waits for their readers.
func (c *Channel) Close() error {
	c.stop()
	c.mu.Lock()
	c.closed = true
	vs := make([]*visitor, 0, len(c.visitors))
	for _, v := range c.visitors {
		vs = append(vs, v)
	}
	c.mu.Unlock()
	for _, v := range vs {
		v.disconnect()
	}
	c.wg.Wait()
	return nil
}

// Disconnect drops customer's socket, as a visitor closing the tab; the next Write reconnects
// and resumes after the last message received.
func (c *Channel) Disconnect(cust sim.Customer) {
	c.mu.Lock()
	v := c.visitors[cust.Visitor]
	c.mu.Unlock()
	if v != nil {
		v.disconnect()
	}
}

// VisitorID is the visitor id the connector knows customer by ("" before their first Write).
func (c *Channel) VisitorID(cust sim.Customer) string {
	c.mu.Lock()
	v := c.visitors[cust.Visitor]
	c.mu.Unlock()
	if v == nil {
		return ""
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.id
}

// Write implements sim.Channel: it sends text as cust's visitor (with cust's phone on their
// first message) and returns once the connector acknowledged it, i.e. the bus stored it.
func (c *Channel) Write(ctx context.Context, cust sim.Customer, text string) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return errors.New("webchatsim: closed")
	}
	v := c.visitors[cust.Visitor]
	if v == nil {
		v = &visitor{ch: c, cust: cust}
		if c.opts.Secret != "" {
			v.id, v.token = cust.Visitor, token(c.opts.Secret, cust.Visitor)
		}
		c.visitors[cust.Visitor] = v
	}
	c.mu.Unlock()
	return v.write(ctx, text)
}

// token is the connector's visitor token: hex(HMAC-SHA256(secret, "omnibus-webchat-visitor\n" + id)).
func token(secret, id string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("omnibus-webchat-visitor\n" + id))
	return hex.EncodeToString(m.Sum(nil))
}

// frame is the union of the protocol's frames, as far as a visitor reads and writes them.
type frame struct {
	Type         string          `json:"type"`
	Visitor      string          `json:"visitor,omitempty"`
	Token        string          `json:"token,omitempty"`
	Since        uint64          `json:"since,omitempty"`
	CID          string          `json:"cid,omitempty"`
	Text         string          `json:"text,omitempty"`
	Phone        string          `json:"phone,omitempty"`
	Seq          uint64          `json:"seq,omitempty"`
	Status       string          `json:"status,omitempty"`
	From         string          `json:"from,omitempty"`
	Message      json.RawMessage `json:"message,omitempty"`
	Reset        bool            `json:"reset,omitempty"`
	Code         string          `json:"code,omitempty"`
	Reason       string          `json:"reason,omitempty"`
	RetryAfterMS int64           `json:"retry_after_ms,omitempty"`
}

type visitor struct {
	ch   *Channel
	cust sim.Customer

	mu         sync.Mutex // serialises this visitor's writes and connects
	id, token  string
	phoneGiven bool
	sock       *socket
	lastSeq    uint64 // guarded by seqMu: the reader updates it
	seqMu      sync.Mutex
}

// socket is one open connection and its reader.
type socket struct {
	conn    *websocket.Conn
	done    chan struct{} // closed when the reader stops
	mu      sync.Mutex
	waiters map[string]chan frame // cid → ack or error
}

func (v *visitor) disconnect() {
	v.mu.Lock()
	s := v.sock
	v.sock = nil
	v.mu.Unlock()
	if s != nil {
		_ = s.conn.Close(websocket.StatusNormalClosure, "visitor left")
		<-s.done
	}
}

func (v *visitor) since() uint64 {
	v.seqMu.Lock()
	defer v.seqMu.Unlock()
	return v.lastSeq
}

// connect opens a socket (v.mu held), says hello and waits for welcome.
func (v *visitor) connect(ctx context.Context) (*socket, error) {
	if v.sock != nil {
		select {
		case <-v.sock.done:
			v.sock = nil
		default:
			return v.sock, nil
		}
	}
	c := v.ch
	ctx, cancel := context.WithTimeout(ctx, c.opts.AckTimeout)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, c.ws, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {c.opts.Origin}}})
	if resp != nil && resp.Body != nil { // set on a refused handshake only
		defer resp.Body.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("webchatsim: dial %s: %w", c.ws, err)
	}
	conn.SetReadLimit(1 << 20)
	hello := frame{Type: "hello", Visitor: v.id, Token: v.token, Since: v.since()}
	if err := writeFrame(ctx, conn, hello); err != nil {
		_ = conn.CloseNow()
		return nil, err
	}
	var welcome frame
	if err := readFrame(ctx, conn, &welcome); err != nil {
		_ = conn.CloseNow()
		return nil, fmt.Errorf("webchatsim: hello as %q: %w", v.id, err)
	}
	if welcome.Type != "welcome" {
		_ = conn.CloseNow()
		return nil, fmt.Errorf("webchatsim: want welcome, got %s %s %s", welcome.Type, welcome.Code, welcome.Reason)
	}
	if v.id != "" && welcome.Visitor != v.id {
		_ = conn.CloseNow()
		return nil, fmt.Errorf("webchatsim: connected as %s, got %s", v.id, welcome.Visitor)
	}
	v.id, v.token = welcome.Visitor, welcome.Token
	if welcome.Reset {
		v.seqMu.Lock()
		v.lastSeq = 0
		v.seqMu.Unlock()
	}
	s := &socket{conn: conn, done: make(chan struct{}), waiters: map[string]chan frame{}}
	// The socket outlives this Write: its reader keeps the context's values, not its deadline
	// (a cancelled read context would drop the connection); Close ends it.
	rctx := context.WithoutCancel(ctx)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer close(s.done)
		v.read(rctx, s)
	}()
	v.sock = s
	return s, nil
}

// read handles a socket's frames until it closes: acks and errors go to the waiting Write,
// agent messages are recorded and receipted.
func (v *visitor) read(ctx context.Context, s *socket) {
	c := v.ch
	for {
		var f frame
		if err := readFrame(ctx, s.conn, &f); err != nil {
			if st := websocket.CloseStatus(err); st != websocket.StatusNormalClosure && st != -1 {
				c.opts.Log.Debug("webchatsim: socket closed", "visitor", v.cust.Visitor, "status", st, "err", err)
			}
			return
		}
		switch f.Type {
		case "ack", "error":
			s.mu.Lock()
			w := s.waiters[f.CID]
			delete(s.waiters, f.CID)
			s.mu.Unlock()
			if w != nil {
				w <- f
			}
		case "msg":
			v.seqMu.Lock()
			fresh := f.Seq > v.lastSeq
			if fresh {
				v.lastSeq = f.Seq
			}
			v.seqMu.Unlock()
			if !fresh || f.From != "agent" {
				continue
			}
			c.env.Record(Vendor, Op, v.cust.Visitor, f.Message, nil)
			wctx, cancel := context.WithTimeout(ctx, c.opts.AckTimeout)
			for _, st := range []string{"delivered", "read"} {
				_ = writeFrame(wctx, s.conn, frame{Type: "receipt", Seq: f.Seq, Status: st})
			}
			cancel()
		}
	}
}

func (v *visitor) write(ctx context.Context, text string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	f := frame{Type: "message", CID: newCID(), Text: text}
	if !v.phoneGiven && v.cust.Phone != "" {
		f.Phone = v.cust.Phone
	}
	// A socket that drops before the ack is reconnected and the message resent with the same
	// cid: the connector stores it once.
	var last error
	for attempt := 0; attempt < 3; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		s, err := v.connect(ctx)
		if err != nil {
			return err
		}
		ack, err := v.send(ctx, s, f)
		if err != nil {
			last = err
			continue
		}
		switch ack.Type {
		case "ack":
			if f.Phone != "" {
				v.phoneGiven = true
			}
			return nil
		case "error":
			if ack.Code == "invalid" {
				return fmt.Errorf("webchatsim: message refused: %s", ack.Reason)
			}
			last = fmt.Errorf("webchatsim: %s: %s", ack.Code, ack.Reason)
			wait := time.Duration(max(ack.RetryAfterMS, 200)) * time.Millisecond
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return last
}

// send writes f on s and waits for its ack or error frame.
func (v *visitor) send(ctx context.Context, s *socket, f frame) (frame, error) {
	w := make(chan frame, 1)
	s.mu.Lock()
	s.waiters[f.CID] = w
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.waiters, f.CID)
		s.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(ctx, v.ch.opts.AckTimeout)
	defer cancel()
	if err := writeFrame(ctx, s.conn, f); err != nil {
		return frame{}, err
	}
	select {
	case a := <-w:
		return a, nil
	case <-s.done:
		return frame{}, errors.New("webchatsim: socket closed before the ack")
	case <-ctx.Done():
		return frame{}, fmt.Errorf("webchatsim: no ack for %s: %w", f.CID, ctx.Err())
	}
}

func writeFrame(ctx context.Context, c *websocket.Conn, f frame) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	return c.Write(ctx, websocket.MessageText, b)
}

func readFrame(ctx context.Context, c *websocket.Conn, f *frame) error {
	_, b, err := c.Read(ctx)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, f)
}

func newCID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "sim_" + hex.EncodeToString(b[:])
}
