package webchat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/omnibus-dev/omnibus/pkg/webhook"
)

const (
	helloTimeout   = 10 * time.Second
	writeTimeout   = 10 * time.Second
	receiptTimeout = 5 * time.Second
	drainTimeout   = 15 * time.Second
	reasonShutdown = "server restarting, reconnect"
)

var (
	errShuttingDown = errors.New("shutting down")
	errFull         = errors.New("too many open connections on this replica")
	errClosed       = errors.New("socket closed")
)

// hub is the set of open sockets of this replica.
type hub struct {
	mu       sync.Mutex
	sessions map[*session]struct{}
	visitors map[string]int
	closing  bool
	wg       sync.WaitGroup
}

func newHub() *hub {
	return &hub{sessions: map[*session]struct{}{}, visitors: map[string]int{}}
}

func (h *hub) add(s *session, maxConns int) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.closing:
		return errShuttingDown
	case len(h.sessions) >= maxConns:
		return errFull
	}
	h.sessions[s] = struct{}{}
	h.wg.Add(1)
	return nil
}

func (h *hub) remove(s *session) {
	h.mu.Lock()
	delete(h.sessions, s)
	h.mu.Unlock()
	h.wg.Done()
}

// claim counts a socket of visitor; false when the visitor has max already.
func (h *hub) claim(visitor string, max int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.visitors[visitor] >= max {
		return false
	}
	h.visitors[visitor]++
	return true
}

func (h *hub) release(visitor string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.visitors[visitor]--; h.visitors[visitor] <= 0 {
		delete(h.visitors, visitor)
	}
}

// shutdown refuses new sockets, closes every open one with 1001 (the widget reconnects, to
// another replica if there is one) and waits for their handlers: a message being published
// finishes first, so it is acknowledged or, if the ack cannot be written, resent by the widget
// and deduplicated.
func (h *hub) shutdown(log *slog.Logger) {
	h.mu.Lock()
	h.closing = true
	open := make([]*session, 0, len(h.sessions))
	for s := range h.sessions {
		open = append(open, s)
	}
	h.mu.Unlock()
	for _, s := range open {
		go s.goingAway()
	}
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
		if len(open) > 0 {
			log.Info("web chat sockets closed", "sockets", len(open))
		}
	case <-time.After(drainTimeout):
		log.Warn("web chat sockets did not close in time", "sockets", len(open), "timeout", drainTimeout)
	}
}

// session is one open socket.
type session struct {
	srv      *server
	remote   string // the connection's peer, for logs
	addr     string // the client's limit key: its address (behind trusted proxies, the one they name), an IPv6 /64
	mu       sync.Mutex
	conn     *websocket.Conn
	closing  bool
	visitor  string
	host     []Identity
	lastSent atomic.Uint64 // highest seq written to this socket
}

// attach sets the accepted connection; false when shutdown began meanwhile.
func (s *session) attach(c *websocket.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conn = c
	return !s.closing
}

func (s *session) goingAway() {
	s.mu.Lock()
	s.closing = true
	c := s.conn
	s.mu.Unlock()
	if c != nil {
		_ = c.Close(websocket.StatusGoingAway, reasonShutdown)
	}
}

func (srv *server) refuse(w http.ResponseWriter, r *http.Request, status int, err error) {
	webhook.Fail(w, r, srv.rt.Log, status, err, "origin", r.Header.Get("Origin"))
}

// serveWS is GET /webchat/ws.
func (srv *server) serveWS(w http.ResponseWriter, r *http.Request) {
	if err := srv.originAllowed(r); err != nil {
		srv.refuse(w, r, http.StatusForbidden, err)
		return
	}
	addr := srv.rt.Guard.ClientKey(r) // an IPv6 client's /64
	if ok, retry := srv.connects.Allow(addr); !ok {
		srv.connects.Refuse(w, r, retry, "too many chat connections from this address; retry after the time in Retry-After")
		return
	}
	sess := &session{srv: srv, remote: r.RemoteAddr, addr: addr}
	if err := srv.hub.add(sess, srv.cfg.MaxConnections); err != nil {
		w.Header().Set("Retry-After", "5")
		srv.refuse(w, r, http.StatusServiceUnavailable, err)
		return
	}
	defer srv.hub.remove(sess)
	// The origin was checked above, with a logged reason; the library's own check would repeat it.
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		srv.rt.Log.Debug("websocket handshake failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	// The library closes with 1009 past this; readFrame stops one byte after it first, with a
	// clearer reason.
	conn.SetReadLimit(int64(srv.cfg.MaxFrame))
	if !sess.attach(conn) {
		_ = conn.Close(websocket.StatusGoingAway, reasonShutdown)
		return
	}
	// The socket outlives the request's context (the connection was hijacked); the values
	// (trace context) stay.
	sess.run(context.WithoutCancel(r.Context()))
}

// closeWith closes the socket with code and a reason (at most 123 bytes are sent).
func (s *session) closeWith(code websocket.StatusCode, reason string) {
	for len(reason) > 123 {
		_, n := utf8.DecodeLastRuneInString(reason)
		reason = reason[:len(reason)-n]
	}
	_ = s.conn.Close(code, reason)
}

func (s *session) run(base context.Context) {
	srv := s.srv
	log := srv.rt.Log
	defer func() { _ = s.conn.CloseNow() }()
	hello, err := s.readHello(base)
	if err != nil {
		return
	}
	visitor, token := hello.Visitor, hello.Token
	if visitor == "" {
		if ok, retry := srv.newVisitors.Allow(s.addr); !ok {
			srv.newVisitors.Count(base)
			log.Warn("web chat new visitor refused: too many from this address", "addr", s.addr, "retry", retry)
			s.closeWith(CloseTooMany, fmt.Sprintf("too many new chats from this address: retry in %ds", int(retry.Seconds())+1))
			return
		}
		visitor = NewVisitorID()
		token = VisitorToken(srv.cfg.Secret, visitor)
	} else if err := CheckVisitor(srv.cfg.Secret, visitor, token); err != nil {
		log.Warn("web chat visitor rejected", "visitor", visitor, "reason", err.Error(), "remote", s.remote)
		s.closeWith(CloseUnauthorized, "visitor token rejected: connect without visitor and token for a new id")
		return
	}
	if hello.Identity != nil {
		id, err := hello.Identity.verify(srv.cfg.IdentitySecret, srv.cfg.IdentityWindow, srv.cfg.PhoneRegion, srv.now())
		if err != nil {
			log.Warn("web chat host identity rejected", "visitor", visitor, "kind", hello.Identity.Kind, "reason", err.Error())
			s.closeWith(CloseIdentity, err.Error())
			return
		}
		s.host = []Identity{id}
	}
	if !srv.hub.claim(visitor, srv.cfg.MaxSockets) {
		s.closeWith(CloseTooMany, fmt.Sprintf("at most %d open chats per visitor", srv.cfg.MaxSockets))
		return
	}
	defer srv.hub.release(visitor)
	s.visitor = visitor

	ctx, cancel := context.WithTimeout(base, writeTimeout)
	since, reset := hello.Since, false
	if hello.Visitor == "" && since > 0 {
		since, reset = 0, true // a new visitor has no log: whatever the widget shows is not theirs
	}
	if since > 0 {
		if last, err := srv.log.lastSeq(ctx); err == nil && since > last {
			since, reset = 0, true
		}
	}
	cancel()
	if err := s.write(base, ServerFrame{Type: FrameWelcome, Visitor: visitor, Token: token, Title: srv.cfg.Title,
		Greeting: srv.cfg.Greeting, Reset: reset}); err != nil {
		return
	}
	// The widget has the log up to since (from an earlier socket): it may receipt that much.
	s.lastSent.Store(since)
	ctx, cancel = context.WithTimeout(base, writeTimeout)
	follow, err := srv.log.follow(ctx, visitor, since, func(l logged) { s.deliver(base, l) })
	cancel()
	if err != nil {
		log.Error("web chat log unavailable", "visitor", visitor, "err", err)
		s.closeWith(websocket.StatusTryAgainLater, "message log unavailable, reconnect")
		return
	}
	defer follow.Stop()
	done := make(chan struct{})
	var keep sync.WaitGroup
	keep.Go(func() { s.keepalive(base, done) })
	defer keep.Wait()
	defer close(done)

	start := time.Now()
	log.Debug("web chat visitor connected", "visitor", visitor, "since", since, "new", hello.Visitor == "", "remote", s.remote)
	for {
		b, err := s.readFrame(base)
		if err != nil {
			log.Debug("web chat visitor disconnected", "visitor", visitor, "after", time.Since(start).Round(time.Second),
				"close", websocket.CloseStatus(err), "err", err)
			return
		}
		f, err := ParseClientFrame(b, srv.cfg.MaxText)
		if err != nil {
			_ = s.write(base, ServerFrame{Type: FrameError, Code: CodeInvalid, Reason: err.Error()})
			continue
		}
		s.handle(base, f)
	}
}

// readHello reads the first frame, which must be hello, within helloTimeout.
func (s *session) readHello(ctx context.Context) (ClientFrame, error) {
	timer := time.AfterFunc(helloTimeout, func() {
		s.closeWith(websocket.StatusPolicyViolation, "no hello frame within "+helloTimeout.String())
	})
	defer timer.Stop()
	b, err := s.readFrame(ctx)
	if err != nil {
		return ClientFrame{}, err
	}
	f, err := ParseClientFrame(b, s.srv.cfg.MaxText)
	if err == nil && f.Type != FrameHello {
		err = fmt.Errorf("%w: the first frame must be hello", ErrFrame)
	}
	if err != nil {
		s.closeWith(websocket.StatusPolicyViolation, err.Error())
		return ClientFrame{}, err
	}
	return f, nil
}

// readFrame reads one text frame of at most MaxFrame bytes; a larger one closes the socket
// with 1009 before the rest is read.
// ctx must not be cancelled while the socket is open: the library closes the connection then.
func (s *session) readFrame(ctx context.Context) ([]byte, error) {
	typ, r, err := s.conn.Reader(ctx)
	if err != nil {
		return nil, err
	}
	if typ != websocket.MessageText {
		s.closeWith(websocket.StatusUnsupportedData, "frames are JSON text")
		return nil, errClosed
	}
	limit := s.srv.cfg.MaxFrame
	b, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > limit {
		s.srv.rt.Log.Warn("web chat frame too large", "visitor", s.visitor, "limit", limit, "remote", s.remote)
		s.closeWith(websocket.StatusMessageTooBig, fmt.Sprintf("frame larger than %d bytes", limit))
		return nil, errClosed
	}
	return b, nil
}

func (s *session) write(ctx context.Context, f ServerFrame) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return s.conn.Write(ctx, websocket.MessageText, b)
}

// deliver writes one log entry to the socket (the log follower calls it in order).
func (s *session) deliver(ctx context.Context, l logged) {
	if l.Seq <= s.lastSent.Load() {
		return
	}
	// Stored before the write: the widget answers a message with its receipts at once, and a
	// receipt read before the store would be clamped to the previous seq and lost. A failed write
	// closes the socket, so nothing unreceived can be receipted through it.
	s.lastSent.Store(l.Seq)
	if err := s.write(ctx, l.frame()); err != nil {
		_ = s.conn.CloseNow() // the widget reconnects and resumes from the last seq it saw
	}
}

func (s *session) handle(ctx context.Context, f ClientFrame) {
	srv := s.srv
	switch f.Type {
	case FrameHello:
		_ = s.write(ctx, ServerFrame{Type: FrameError, Code: CodeInvalid, Reason: "hello was already received"})
	case FrameMessage, FrameContact:
		ack, err := srv.ingest(ctx, s.addr, s.visitor, s.host, f)
		if err != nil {
			ie := &ingestError{Code: CodeUnavailable, Err: err}
			errors.As(err, &ie)
			_ = s.write(ctx, ie.frame(f.CID))
			return
		}
		_ = s.write(ctx, ack)
	case FrameReceipt:
		// Only what the widget can have (the log up to since, and what this socket delivered)
		// can be receipted through it.
		upTo := min(f.Seq, s.lastSent.Load())
		if upTo == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(ctx, receiptTimeout)
		defer cancel()
		if err := srv.receipt(ctx, s.visitor, f.Status, upTo); err != nil {
			srv.rt.Log.Warn("web chat receipt not recorded", "visitor", s.visitor, "status", f.Status, "seq", upTo, "err", err)
		}
	}
}

// keepalive pings every PingInterval; a peer that does not answer within it is dropped.
func (s *session) keepalive(base context.Context, done <-chan struct{}) {
	every := s.srv.cfg.PingInterval
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(base, every)
		err := s.conn.Ping(ctx)
		cancel()
		if err != nil {
			_ = s.conn.CloseNow()
			return
		}
	}
}
