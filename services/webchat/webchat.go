// Package webchat is the web chat channel: an embeddable widget (one script tag on any site)
// talking to this connector over a WebSocket, and the connector speaking CloudEvents on the bus.
//
//   - Visitors are anonymous: the connector issues a visitor id and an HMAC token on the first
//     connection (see VisitorToken); the widget keeps both in localStorage. A visitor may leave
//     a phone or email (validated, phone in E.164), and a host site may pass a signed identity
//     of its logged-in user (see HostIdentity); both go into the "identities" of the visitor's
//     message events, so the unifier joins the visitor to the customer.
//   - Inbound: each visitor message is published as omni.channel.message.received on
//     omni.in.webchat.message, with event id webchat:<visitor>:<client message id> (a resend is
//     stored once), and acknowledged to the widget only after JetStream acknowledged it.
//   - Outbound: omni.out.webchat.message.send commands are appended to the visitor's log and
//     reach every open socket of the visitor, on any replica; statuses go to
//     omni.in.webchat.status: sent when stored, delivered and read when the widget says so.
//   - Every visitor has an ordered message log in a JetStream stream the connector owns (see
//     log.go): a widget reconnecting, or reloading the page, resumes from the last seq it saw,
//     without loss or repeats, across connector restarts and replicas.
//
// Routes: /webchat/ (demo page), /webchat/widget.js, /webchat/widget.css, /webchat/ws (the
// WebSocket) and /webchat/api/messages (the same protocol over HTTP). README.md documents the
// frames, the configuration and the security model.
package webchat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/httpguard"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/pkg/webhook"
	"github.com/omnibus-dev/omnibus/schemas"
)

// Event types, subjects, routes and the Spec that declares them.
const (
	Name         = "webchat"
	TypeReceived = schemas.TypeChannelMessageReceived
	TypeSend     = schemas.TypeChannelMessageSendRequested
	TypeStatus   = schemas.TypeChannelMessageStatusUpdated
	SubjectIn    = "omni.in.webchat.message"
	SubjectOut   = "omni.out.webchat.message.send"
	SubjectState = "omni.in.webchat.status"
	// KindVisitor is the identity kind of a web chat visitor.
	KindVisitor = "web_visitor"
)

var (
	RouteIn     = connector.Route{Subject: SubjectIn, Type: TypeReceived}
	RouteStatus = connector.Route{Subject: SubjectState, Type: TypeStatus}
	RouteSend   = connector.Route{Subject: SubjectOut, Type: TypeSend}
	Spec        = connector.Spec{
		Name:    Name,
		Buckets: []string{CursorBucket}, Streams: []service.OwnStream{{Name: LogStream, Subjects: []string{logSubjectPrefix + "*"}}},
		Description: "web chat widget over WebSocket: visitor messages in, agent replies out, resumable per-visitor log",
		Produces:    []connector.Route{RouteIn, RouteStatus},
		Consumes:    []connector.Route{RouteSend},
	}
)

// publishTimeout bounds the wait for JetStream on a visitor's message; the widget resends
// what was not acknowledged.
const publishTimeout = 5 * time.Second

// Service returns the connector as a service.
func Service() service.Service { return connector.Define(Spec, setup) }

type server struct {
	rt     *connector.Runtime
	cfg    *Config
	log    *visitorLog
	hub    *hub
	limits *limiter // per visitor
	// Per client address: messages across visitors, new visitors, WebSocket handshakes.
	byAddress, newVisitors, connects *httpguard.Limiter
	now                              func() time.Time
}

func setup(ctx context.Context, rt *connector.Runtime, cfg *Config) error {
	vl, err := openLog(ctx, rt.Bus.JetStream(), rt, cfg)
	if err != nil {
		return err
	}
	counter := rt.Guard.Counter()
	if counter == nil {
		counter = httpguard.NewCounter(rt.Meter)
	}
	limit := func(entry string, r httpguard.Rate) *httpguard.Limiter {
		return httpguard.NewLimiter("webchat/"+entry, r, httpguard.WithCounter(counter))
	}
	s := &server{rt: rt, cfg: cfg, log: vl, hub: newHub(), limits: newLimiter(cfg.RatePerMinute, cfg.Burst), now: time.Now,
		byAddress: limit("messages", cfg.addressRate), newVisitors: limit("visitors", cfg.newVisitorRate), connects: limit("connect", cfg.connectRate)}
	assets, err := assetHandler()
	if err != nil {
		return err
	}
	for pattern, h := range map[string]http.Handler{
		"GET /webchat/":              assets,
		"GET /webchat/ws":            http.HandlerFunc(s.serveWS),
		"POST /webchat/api/messages": http.HandlerFunc(s.apiPost),
		"GET /webchat/api/messages":  http.HandlerFunc(s.apiGet),
	} {
		if err := rt.Handle(pattern, h); err != nil {
			return err
		}
	}
	rt.Go(ctx, "sockets", func(ctx context.Context) error {
		<-ctx.Done()
		s.hub.shutdown(rt.Log)
		return nil
	})
	rt.Go(ctx, "rate-limit sweep", s.limits.sweep)
	// One command in flight across all replicas: agent replies reach the visitor's log in the
	// order the desk sent them (a few hundred sends a second, far above what agents type).
	return rt.Consume(ctx, RouteSend, s.send, bus.ConsumerConfig{MaxAckPending: 1, AckWait: 15 * time.Second})
}

// ingestError is why a visitor's message was not stored: Code is the error frame's code.
type ingestError struct {
	Code  string
	Retry time.Duration
	Err   error
}

func (e *ingestError) Error() string { return e.Err.Error() }
func (e *ingestError) Unwrap() error { return e.Err }

func (e *ingestError) frame(cid string) ServerFrame {
	f := ServerFrame{Type: FrameError, CID: cid, Code: e.Code, Reason: webhook.ClientReason(e.Err)}
	if e.Retry > 0 {
		f.RetryAfterMS = max(e.Retry.Milliseconds(), 1)
	}
	return f
}

func (e *ingestError) status() int {
	switch e.Code {
	case CodeInvalid:
		return http.StatusBadRequest
	case CodeRateLimited:
		return http.StatusTooManyRequests
	}
	return http.StatusServiceUnavailable
}

// contactCommand is "/phone 138 0013 8000" or "/email a@b.cn" typed as a message.
var contactCommand = regexp.MustCompile(`^/(phone|tel|email|mail|电话|手机|邮箱)[\s:：]+(\S.*?)\s*$`)

// asContact turns a contact command typed as a message into a contact frame.
func asContact(f ClientFrame) ClientFrame {
	m := contactCommand.FindStringSubmatch(f.Text)
	if f.Type != FrameMessage || m == nil || f.Phone != "" || f.Email != "" {
		return f
	}
	c := ClientFrame{Type: FrameContact, CID: f.CID}
	switch m[1] {
	case "email", "mail", "邮箱":
		c.Email = m[2]
	default:
		c.Phone = m[2]
	}
	return c
}

// ingest publishes a visitor's message or contact frame, appends it to the visitor's log, and
// returns the ack frame. addr is the client address it came from (limited across visitors),
// host holds identities the host site signed for this visitor.
func (s *server) ingest(ctx context.Context, addr, visitor string, host []Identity, f ClientFrame) (ServerFrame, error) {
	now := s.now().UTC()
	if ok, wait := s.byAddress.Allow(addr); !ok {
		s.byAddress.Count(ctx)
		return ServerFrame{}, &ingestError{CodeRateLimited, wait, errors.New("too many messages from this address")}
	}
	if ok, wait := s.limits.allow(visitor, now); !ok {
		return ServerFrame{}, &ingestError{CodeRateLimited, wait, fmt.Errorf("too many messages: at most %d a minute", s.cfg.RatePerMinute)}
	}
	f = asContact(f)
	given, err := contactIdentities(f, s.cfg.PhoneRegion)
	if err != nil {
		return ServerFrame{}, &ingestError{Code: CodeInvalid, Err: err}
	}
	ack := ServerFrame{Type: FrameAck, CID: f.CID}
	for _, id := range given {
		switch id.Kind {
		case "phone":
			ack.Phone = id.Value
		case "email":
			ack.Email = id.Value
		}
	}
	var msg json.RawMessage
	if f.Type == FrameContact {
		msg = json.RawMessage(`{"type":"event","event":{"name":"contact_shared"}}`)
	} else {
		msg, _ = json.Marshal(map[string]string{"type": "text", "text": f.Text})
	}
	idents := given
	for _, h := range host {
		dup := false
		for _, g := range given {
			dup = dup || g == h
		}
		if !dup {
			idents = append(idents, h)
		}
	}
	cmid := visitor + ":" + f.CID
	id := "webchat:" + cmid
	data := map[string]any{
		"channel": Name, "channel_message_id": cmid, "from": Identity{KindVisitor, visitor},
		"message": msg, "sent_at": now,
	}
	if len(idents) > 0 {
		data["identities"] = idents
	}
	if s.cfg.Account != "" {
		data["account"] = s.cfg.Account
	}
	e, err := s.rt.NewEvent(TypeReceived, data, event.WithID(id), event.WithPartitionKey(KindVisitor+":"+visitor), event.WithTime(now))
	if err != nil {
		return ServerFrame{}, &ingestError{Code: CodeInvalid, Err: err}
	}
	// An in-flight message finishes during shutdown (the connector drains): the widget gets its
	// ack, or resends after reconnecting and the event id dedupes the resend.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	if err := s.rt.Publish(pctx, bus.Outgoing{Subject: SubjectIn, Event: e}); err != nil {
		s.rt.Log.Error("visitor message not stored; the widget will resend", "visitor", visitor, "cid", f.CID, "err", err)
		return ServerFrame{}, &ingestError{CodeUnavailable, 2 * time.Second, errors.New("not stored, send again")}
	}
	seq, err := s.log.append(pctx, visitor, entry{From: fromVisitor, ID: id, CID: f.CID, Message: msg, At: now})
	if err != nil {
		s.rt.Log.Error("visitor message published but not logged; the widget will resend", "visitor", visitor, "cid", f.CID, "err", err)
		return ServerFrame{}, &ingestError{CodeUnavailable, 2 * time.Second, errors.New("not stored, send again")}
	}
	ack.Seq = seq
	return ack, nil
}

// sendCommand is the data of omni.channel.message.send.requested, as far as webchat reads it.
type sendCommand struct {
	To             Identity        `json:"to"`
	Message        json.RawMessage `json:"message"`
	ConversationID string          `json:"conversation_id,omitempty"`
}

// renderable says why the widget cannot show msg ("" when it can).
func renderable(msg json.RawMessage) string {
	var m struct {
		Type     string `json:"type"`
		MediaURL string `json:"media_url"`
	}
	if err := json.Unmarshal(msg, &m); err != nil {
		return "undecodable message"
	}
	switch m.Type {
	case "text", "link":
		return ""
	case "image", "file":
		if m.MediaURL == "" {
			return m.Type + " without media_url: web chat shows media by URL, not by vendor media id"
		}
		return ""
	}
	return fmt.Sprintf("web chat cannot show %q messages", m.Type)
}

// send consumes an outbound command: it appends the message to the visitor's log (every open
// socket of the visitor, on any replica, gets it from there) and publishes the sent status.
func (s *server) send(ctx context.Context, d bus.Delivery) error {
	var cmd sendCommand
	if err := event.DecodeData(d.Event, &cmd); err != nil {
		return bus.Permanent(fmt.Errorf("undecodable send command: %w", err))
	}
	e := entry{From: fromAgent, ID: d.Event.ID(), Message: cmd.Message, At: s.now().UTC(), To: &cmd.To, ConversationID: cmd.ConversationID}
	var code, reason string
	switch {
	case cmd.To.Kind != KindVisitor:
		code, reason = "unsupported_recipient", fmt.Sprintf("web chat sends to %s identities, not %s", KindVisitor, cmd.To.Kind)
	case !ValidVisitorID(cmd.To.Value):
		code, reason = "unknown_visitor", "not a web chat visitor id"
	default:
		reason = renderable(cmd.Message)
		if reason != "" {
			code = "unsupported_message"
		}
	}
	if code != "" {
		s.rt.Log.Warn("send command refused", "id", e.ID, "code", code, "reason", reason)
		st, err := s.statusEvent(e, "failed", e.At, code, reason)
		if err != nil {
			return bus.Permanent(err)
		}
		return s.rt.Publish(ctx, st)
	}
	if _, err := s.log.append(ctx, cmd.To.Value, e); err != nil {
		return err // transient: redelivered; the message id dedupes the append
	}
	st, err := s.statusEvent(e, "sent", e.At, "", "")
	if err != nil {
		return bus.Permanent(err)
	}
	return s.rt.Publish(ctx, st)
}

// statusEvent is the status of an agent message. Its id is deterministic per message and
// status, so a status reported twice (redelivery, two tabs) is stored once.
func (s *server) statusEvent(e entry, status string, at time.Time, code, reason string) (bus.Outgoing, error) {
	data := map[string]any{"channel": Name, "message_id": e.ID, "status": status, "at": at.UTC()}
	if e.To != nil && len(e.Message) > 0 {
		data["to"], data["message"] = e.To, e.Message
	}
	if _, err := uuid.Parse(e.ConversationID); err == nil && e.ConversationID != "" {
		data["conversation_id"] = e.ConversationID
	}
	if code != "" {
		data["error_code"], data["error"] = code, reason
	}
	opts := []event.Option{event.WithID("webchat:status:" + e.ID + ":" + status), event.WithCorrelationID(e.ID), event.WithTime(at)}
	if e.To != nil {
		opts = append(opts, event.WithPartitionKey(e.To.Kind+":"+e.To.Value))
	}
	ev, err := s.rt.NewEvent(TypeStatus, data, opts...)
	return bus.Outgoing{Subject: SubjectState, Event: ev}, err
}

// receipt publishes delivered or read statuses for visitor's agent messages up to seq upTo not
// yet reported, and moves the visitor's cursor.
func (s *server) receipt(ctx context.Context, visitor, status string, upTo uint64) error {
	return s.log.advance(ctx, visitor, status, upTo, func(from, to uint64) error {
		entries, err := s.log.read(ctx, visitor, from+1, to, s.cfg.History+1)
		if err != nil {
			return err
		}
		at := s.now().UTC()
		var batch []bus.Outgoing
		for _, l := range entries {
			if l.From != fromAgent || l.To == nil {
				continue
			}
			st, err := s.statusEvent(l.entry, status, at, "", "")
			if err != nil {
				return err
			}
			batch = append(batch, st)
		}
		if len(batch) == 0 {
			return nil
		}
		return s.rt.Publish(ctx, batch...)
	})
}

// originAllowed applies WEBCHAT_ALLOWED_ORIGINS the way the WebSocket library does: no Origin
// header (not a browser) or the connector's own host passes; otherwise a pattern must match the
// origin's host, or its scheme://host when the pattern has a scheme.
func (s *server) originAllowed(r *http.Request) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	scheme, host, ok := strings.Cut(origin, "://")
	if !ok || host == "" || strings.ContainsAny(host, "/?#") {
		return fmt.Errorf("origin %q is not scheme://host", origin)
	}
	if strings.EqualFold(host, r.Host) {
		return nil
	}
	for _, p := range s.cfg.AllowedOrigins {
		target := host
		if strings.Contains(p, "://") {
			target = scheme + "://" + host
		}
		if ok, _ := pathMatch(p, target); ok {
			return nil
		}
	}
	return fmt.Errorf("origin %s is not in WEBCHAT_ALLOWED_ORIGINS", origin)
}
