// Package ticket is the ticketing tool connector (Jira Cloud or Zendesk, TICKET_PROVIDER). It
// consumes omni.tool.ticket.create.requested and omni.tool.ticket.comment.requested and answers
// with .completed / .failed (correlationid = the request's id, deterministic ids), and turns the
// vendors' status webhooks (POST /hooks/ticket/jira, /hooks/ticket/zendesk) into
// omni.tool.ticket.status.changed.
//
// # One ticket per conversation, whatever happens
//
// The ticket carries its conversation (Jira label omnibus-conv-<id>, Zendesk external_id
// omnibus:conversation:<id>). A create request first searches for it (an idempotent call the
// pipeline retries) and answers with the existing ticket when there is one (reused: true).
// Requests of one conversation are serialised in the process (a lock per conversation; different
// conversations never wait for each other). Then:
//
//   - Zendesk: the create carries Idempotency-Key omnibus:conversation:<id> (Zendesk remembers a
//     key 2 hours and replays the first answer for a repeat with the same parameters), so the
//     <vendor>.create route is declared idempotent and the pipeline retries a 5xx, a timeout or a
//     dropped connection with backoff within the request's budget: a create whose answer was lost
//     is answered, on the retry, with the ticket it made. A key refused because another create of
//     the conversation used it with other parameters (400 IdempotentRequestError) is answered with
//     the conversation's ticket found by a search, else .failed idempotency_conflict.
//   - Jira has no idempotency key: the create is sent once per call (never retried by the
//     pipeline). When its outcome is unknown (5xx, timeout, dropped connection) the connector waits
//     TICKET_RECONCILE_DELAY and searches: found → that ticket; not found → the create did not
//     take effect and is sent again, up to the create route's MAX_ATTEMPTS sends per request and
//     while the budget allows. The residual risk is Jira's search index lag: an issue made by a
//     create whose answer was lost, and not yet searchable TICKET_RECONCILE_DELAY later, is created
//     a second time. Find then answers every later request with the oldest issue (lowest id) and
//     logs a warning, so every answer names one ticket, the same one from then on.
//
// # Routing by business type
//
// A request's business_type (assist's automatic tickets set it) routes the ticket to the
// department TICKET_ROUTES names for it: a Jira component (fields.components), or a Zendesk group
// (group_id; the name is looked up in GET /api/v2/groups.json, listed once and again when a name
// is missing, at most once a minute; a number is taken as the id). A department the vendor does
// not know does not lose the ticket: Jira's refusal of the component (400 errors.components) is
// answered by creating it without, and a Zendesk group not found leaves it unassigned; both log a
// warning.
//
// A request that still fails for a transient reason (the vendor's 5xx or timeouts after the
// retries, an outcome still unknown, local throttling) is redelivered by the bus after 1s, 2s,
// 4s — a redelivery starts with the search, so it is safe — and only its last delivery
// (TICKET_MAX_DELIVER) answers .failed with the manual fallback. A 429 is redelivered after the
// vendor's Retry-After (nothing was created). A refusal (4xx) or an open breaker answers .failed at
// once.
//
// Every vendor call goes through its pkg/resilience route, <vendor>.search, <vendor>.create or
// <vendor>.comment (vendor jira or zendesk): per-attempt timeout within the request's budget,
// retries for the idempotent routes, breaker, bulkhead, rate limit, one audit record per call on
// omni.audit.ticket, omnibus_vendor_* metrics.
package ticket

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/audit"
	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/pii"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/pkg/wire/jira"
	"github.com/omnibus-dev/omnibus/pkg/wire/zendesk"
	"github.com/omnibus-dev/omnibus/schemas"
)

// Event types (each is also its subject).
const (
	TypeCreateRequested  = schemas.TypeToolTicketCreateRequested
	TypeCreateCompleted  = schemas.TypeToolTicketCreateCompleted
	TypeCreateFailed     = schemas.TypeToolTicketCreateFailed
	TypeCommentRequested = schemas.TypeToolTicketCommentRequested
	TypeCommentCompleted = schemas.TypeToolTicketCommentCompleted
	TypeCommentFailed    = schemas.TypeToolTicketCommentFailed
	TypeStatusChanged    = schemas.TypeToolTicketStatusChanged
	TypeAudit            = audit.TypeCallRecorded
	SubjectAudit         = "omni.audit.ticket"
)

func route(t string) connector.Route { return connector.Route{Subject: t, Type: t} }

// Spec declares the connector. Audit records and route alerts are published by its resilience
// registry.
var Spec = connector.Spec{
	Name:        "ticket",
	Description: "tickets from conversations in Jira Cloud or Zendesk, one per conversation, with comments and status sync",
	Consumes:    []connector.Route{route(TypeCreateRequested), route(TypeCommentRequested)},
	Produces: append([]connector.Route{route(TypeCreateCompleted), route(TypeCreateFailed), route(TypeCommentCompleted),
		route(TypeCommentFailed), route(TypeStatusChanged)}, connector.ResilienceRoutes("ticket")...),
}

// Service returns the connector as a service.
func Service() service.Service { return connector.Define(Spec, setup) }

// Connector is the running connector.
type Connector struct {
	cfg   Config
	rt    *connector.Runtime
	prov  provider
	locks convLocks
	// reconcileBound bounds the search after a create without a clear answer: two search attempt
	// timeouts, even when the create used up the request's budget.
	reconcileBound time.Duration
	// createSends is how many times one request may send a create: the create route's
	// MAX_ATTEMPTS for Jira (a send follows a search that found nothing), 1 for Zendesk (the
	// pipeline retries the keyed create itself).
	createSends int
	// createMin is the least budget left worth sending another create: half an attempt's timeout.
	createMin time.Duration

	mu       sync.Mutex
	comments map[string]string // comment request id → comment id (answered comments, bounded)
	order    []string
}

func setup(ctx context.Context, rt *connector.Runtime, cfg *Config) error {
	c, err := New(ctx, rt, *cfg, nil)
	if err != nil {
		return err
	}
	// Before taking requests: the vendor accepts the credentials and knows the project.
	if err := c.checkVendor(ctx); err != nil {
		return err
	}
	if err := c.mountWebhooks(); err != nil {
		return err
	}
	cc := bus.ConsumerConfig{Concurrency: cfg.Concurrency, AckWait: cfg.Budget + 30*time.Second,
		MaxDeliver: cfg.MaxDeliver, Backoff: redeliveryBackoff}
	if err := rt.Consume(ctx, route(TypeCreateRequested), c.HandleCreate, cc); err != nil {
		return err
	}
	return rt.Consume(ctx, route(TypeCommentRequested), c.HandleComment, cc)
}

// New builds the connector on rt: the vendor's routes on rt's resilience registry (audit records
// and alerts on rt's bus, flushed when rt shuts down; route overrides read from rt.Env). client defaults to one with no overall timeout (every attempt is bounded by its route's
// timeout).
func New(ctx context.Context, rt *connector.Runtime, cfg Config, client *http.Client) (*Connector, error) {
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 16
		client = &http.Client{Transport: tr}
	}
	reg, err := rt.Resilience()
	if err != nil {
		return nil, err
	}
	c := &Connector{cfg: cfg, rt: rt, comments: map[string]string{}}
	var rs routes
	switch cfg.Provider {
	case ProviderZendesk:
		p := &zendeskProvider{cfg: cfg, client: client, auth: zendesk.BasicAuth(cfg.ZendeskEmail, cfg.ZendeskAPIToken), log: rt.Log}
		p.routes, err = newRoutes(reg, p)
		c.prov, rs = p, p.routes
	default:
		p := &jiraProvider{cfg: cfg, client: client, auth: jira.BasicAuth(cfg.JiraEmail, cfg.JiraAPIToken), log: rt.Log}
		p.routes, err = newRoutes(reg, p)
		c.prov, rs = p, p.routes
	}
	if err != nil {
		return nil, err
	}
	c.reconcileBound = 2 * rs.search.Settings().Timeout
	c.createSends, c.createMin = 1, rs.create.Settings().Timeout/2
	if !c.prov.KeyedCreate() {
		c.createSends = rs.create.Settings().MaxAttempts
	}
	return c, nil
}

// redeliveryBackoff is the bus's delay before redelivering a request that failed transiently.
var redeliveryBackoff = []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}

// convLocks serialises the requests of one conversation. Its mutex guards only the map (held for
// a map operation, never during a vendor call); each conversation has its own lock, dropped when
// no request of it is running.
type convLocks struct {
	mu sync.Mutex
	m  map[string]*convLock
}

type convLock struct {
	sync.Mutex
	refs int
}

func (l *convLocks) lock(conv string) func() {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*convLock{}
	}
	cl := l.m[conv]
	if cl == nil {
		cl = &convLock{}
		l.m[conv] = cl
	}
	cl.refs++
	l.mu.Unlock()
	cl.Lock()
	return func() {
		cl.Unlock()
		l.mu.Lock()
		if cl.refs--; cl.refs == 0 {
			delete(l.m, conv)
		}
		l.mu.Unlock()
	}
}

func (c *Connector) lock(conv string) func() { return c.locks.lock(conv) }

type createRequest struct {
	ConversationID string `json:"conversation_id"`
	CustomerID     string `json:"customer_id,omitempty"`
	Subject        string `json:"subject"`
	Description    string `json:"description,omitempty"`
	Priority       string `json:"priority,omitempty"`
	Requester      *struct {
		Name  string `json:"name,omitempty"`
		Email string `json:"email,omitempty"`
	} `json:"requester,omitempty"`
	Tags         []string `json:"tags,omitempty"`
	BusinessType string   `json:"business_type,omitempty"`
}

type createCompleted struct {
	ConversationID string `json:"conversation_id,omitempty"`
	CustomerID     string `json:"customer_id,omitempty"`
	Provider       string `json:"provider"`
	TicketID       string `json:"ticket_id"`
	URL            string `json:"url,omitempty"`
	Status         string `json:"status,omitempty"`
	Reused         bool   `json:"reused"`
}

type failure struct {
	ConversationID string    `json:"conversation_id,omitempty"`
	CustomerID     string    `json:"customer_id,omitempty"`
	Provider       string    `json:"provider"`
	TicketID       string    `json:"ticket_id,omitempty"`
	ErrorCode      string    `json:"error_code,omitempty"`
	Error          string    `json:"error"`
	Fallback       *fallback `json:"fallback,omitempty"`
}

type fallback struct {
	ManualURL string `json:"manual_url,omitempty"`
	Note      string `json:"note,omitempty"`
}

// HandleCreate answers a create request with the conversation's one ticket.
func (c *Connector) HandleCreate(ctx context.Context, d bus.Delivery) error {
	var req createRequest
	if err := event.DecodeData(d.Event, &req); err != nil || req.ConversationID == "" || req.Subject == "" {
		return bus.Permanent(errors.Join(errors.New("create request needs conversation_id and subject"), err))
	}
	defer c.lock(req.ConversationID)()
	budget, cancel := context.WithTimeout(ctx, c.cfg.Budget)
	defer cancel()
	call := resilience.Call{CustomerID: req.CustomerID, CorrelationID: d.Event.ID(), Key: req.ConversationID}
	r, reused, err := c.ensure(budget, req, call)
	if err != nil && !c.lastDelivery(d) {
		if wait, ok := bus.RetryDelay(err); ok && !errors.Is(err, errAmbiguous) {
			// The vendor rate-limited us before anything was created: redeliver after its Retry-After.
			return bus.RetryAfter(err, wait)
		}
		if transient(err) {
			// A redelivery starts with the search: it finds a ticket this delivery may have made.
			c.rt.Log.Warn("ticket create failed transiently; the request will be redelivered", "conversation", req.ConversationID,
				"request", d.Event.ID(), "delivery", d.NumDelivered, "err", err)
			return err
		}
	}
	var out bus.Outgoing
	opts := c.opts(d.Event, "ticket:create:"+d.Event.ID(), req.ConversationID)
	if err == nil {
		e, eerr := c.rt.NewEvent(TypeCreateCompleted, createCompleted{ConversationID: req.ConversationID, CustomerID: req.CustomerID,
			Provider: c.prov.Name(), TicketID: r.ID, URL: r.URL, Status: r.Status, Reused: reused}, opts...)
		if eerr != nil {
			return bus.Permanent(eerr)
		}
		out = bus.Outgoing{Subject: TypeCreateCompleted, Event: e}
	} else {
		e, eerr := c.rt.NewEvent(TypeCreateFailed, failure{ConversationID: req.ConversationID, CustomerID: req.CustomerID,
			Provider: c.prov.Name(), ErrorCode: errorCode(err), Error: capText(err.Error()),
			Fallback: &fallback{ManualURL: c.prov.NewTicketURL(), Note: "工单系统暂不可用，请手动创建工单（会话 " + req.ConversationID + "）"}}, opts...)
		if eerr != nil {
			return bus.Permanent(eerr)
		}
		out = bus.Outgoing{Subject: TypeCreateFailed, Event: e}
	}
	pctx, pcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer pcancel()
	return c.rt.Publish(pctx, out)
}

// ensure finds the conversation's ticket or creates it, reconciling a create without a clear
// answer (see the package doc). reused reports a ticket that this request did not create.
func (c *Connector) ensure(ctx context.Context, req createRequest, call resilience.Call) (ref, bool, error) {
	conv := req.ConversationID
	if r, ok, err := c.prov.Find(ctx, conv, call); err != nil || ok {
		return r, ok, err
	}
	t := newTicket{Subject: capRunes(pii.Redact(req.Subject), 255), Description: pii.Redact(req.Description), Priority: req.Priority, Tags: req.Tags,
		Department: c.cfg.Department(req.BusinessType)}
	if req.Requester != nil {
		t.RequesterName, t.RequesterEmail = req.Requester.Name, req.Requester.Email
	}
	for send := 1; ; send++ {
		r, err := c.prov.Create(ctx, conv, t, call)
		switch {
		case err == nil:
			return r, r.existing, nil
		case errors.Is(err, errKeyConflict):
			// Another create of the conversation used the key: its ticket is the conversation's.
			c.rt.Log.Warn("the vendor refused the conversation's idempotency key; looking for its ticket", "conversation", conv, "err", err)
			if found, ok, ferr := c.reconcile(ctx, conv, call, 0); ferr == nil && ok {
				return found, true, nil
			}
			return ref{}, false, err
		case !ambiguous(err):
			return ref{}, false, err
		}
		// The create may have reached the vendor: look for it before answering or sending it again.
		c.rt.Log.Warn("ticket create without a clear answer; reconciling by search", "conversation", conv, "send", send, "err", err)
		found, ok, ferr := c.reconcile(ctx, conv, call, c.cfg.ReconcileDelay)
		switch {
		case ferr == nil && ok:
			return found, false, nil
		case ferr != nil || send >= c.createSends || !c.fits(ctx):
			return ref{}, false, errors.Join(errAmbiguous, err, ferr)
		}
		// The search found nothing: the create did not take effect, send it again.
	}
}

// reconcile searches for the conversation's ticket after delay (Jira's search is eventually
// consistent), bounded by reconcileBound rather than by ctx, whose budget the create may have used.
func (c *Connector) reconcile(ctx context.Context, conv string, call resilience.Call, delay time.Duration) (ref, bool, error) {
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.reconcileBound)
	defer cancel()
	return c.prov.Find(rctx, conv, call)
}

// fits reports whether ctx's budget leaves time for another create.
func (c *Connector) fits(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ctx.Err() == nil && (!ok || time.Until(dl) >= c.createMin)
}

// lastDelivery reports whether d is the request's last delivery: it must be answered.
func (c *Connector) lastDelivery(d bus.Delivery) bool {
	return d.NumDelivered >= uint64(c.cfg.MaxDeliver)
}

// transient reports failures a redelivery may cure: the vendor's 5xx or timeouts after the
// retries, an outcome still unknown, local throttling (rate limiter, bulkhead), a cancelled or
// exhausted budget. Not: refusals (4xx), an open breaker (the fallback is offered at once), a
// rate limit (redelivered after Retry-After instead).
func transient(err error) bool {
	if errors.Is(err, errAmbiguous) {
		return true
	}
	var fail *resilience.Error
	if errors.As(err, &fail) {
		switch fail.Outcome {
		case audit.OutcomeError, audit.OutcomeTimeout, audit.OutcomeThrottled, audit.OutcomeBulkheadFull, audit.OutcomeCanceled:
			return true
		}
		return false
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

type commentRequest struct {
	ConversationID string `json:"conversation_id"`
	CustomerID     string `json:"customer_id,omitempty"`
	TicketID       string `json:"ticket_id,omitempty"`
	Body           string `json:"body"`
	Public         bool   `json:"public,omitempty"`
}

type commentCompleted struct {
	ConversationID string `json:"conversation_id,omitempty"`
	CustomerID     string `json:"customer_id,omitempty"`
	Provider       string `json:"provider"`
	TicketID       string `json:"ticket_id"`
	CommentID      string `json:"comment_id,omitempty"`
	URL            string `json:"url,omitempty"`
}

var errNoTicket = errors.New("the conversation has no ticket yet")

// HandleComment adds a comment to the conversation's ticket.
func (c *Connector) HandleComment(ctx context.Context, d bus.Delivery) error {
	var req commentRequest
	if err := event.DecodeData(d.Event, &req); err != nil || req.ConversationID == "" || req.Body == "" {
		return bus.Permanent(errors.Join(errors.New("comment request needs conversation_id and body"), err))
	}
	defer c.lock(req.ConversationID)()
	budget, cancel := context.WithTimeout(ctx, c.cfg.Budget)
	defer cancel()
	call := resilience.Call{CustomerID: req.CustomerID, CorrelationID: d.Event.ID(), Key: req.ConversationID}
	id := req.TicketID
	var err error
	commentID, done := c.answered(d.Event.ID())
	if !done {
		if id == "" {
			var r ref
			var ok bool
			r, ok, err = c.prov.Find(budget, req.ConversationID, call)
			if err == nil && !ok {
				err = errNoTicket
			}
			id = r.ID
		}
		if err == nil {
			commentID, err = c.prov.Comment(budget, id, pii.Redact(req.Body), req.Public, call)
			if err == nil || ambiguous(err) {
				c.remember(d.Event.ID(), commentID) // never comment twice for one request
			}
		}
	}
	if wait, ok := bus.RetryDelay(err); ok && !c.lastDelivery(d) {
		return bus.RetryAfter(err, wait)
	}
	opts := c.opts(d.Event, "ticket:comment:"+d.Event.ID(), req.ConversationID)
	var out bus.Outgoing
	if err == nil {
		e, eerr := c.rt.NewEvent(TypeCommentCompleted, commentCompleted{ConversationID: req.ConversationID, CustomerID: req.CustomerID,
			Provider: c.prov.Name(), TicketID: id, CommentID: commentID, URL: c.prov.TicketURL(id)}, opts...)
		if eerr != nil {
			return bus.Permanent(eerr)
		}
		out = bus.Outgoing{Subject: TypeCommentCompleted, Event: e}
	} else {
		fb := &fallback{ManualURL: c.prov.NewTicketURL(), Note: "请在工单系统中手动添加备注"}
		if id != "" {
			fb.ManualURL = c.prov.TicketURL(id)
		}
		if errors.Is(err, errAmbiguous) || ambiguous(err) {
			fb.Note = "备注可能已添加，请打开工单确认，勿重复添加"
		}
		e, eerr := c.rt.NewEvent(TypeCommentFailed, failure{ConversationID: req.ConversationID, CustomerID: req.CustomerID,
			Provider: c.prov.Name(), TicketID: id, ErrorCode: errorCode(err), Error: capText(err.Error()), Fallback: fb}, opts...)
		if eerr != nil {
			return bus.Permanent(eerr)
		}
		out = bus.Outgoing{Subject: TypeCommentFailed, Event: e}
	}
	pctx, pcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer pcancel()
	return c.rt.Publish(pctx, out)
}

func (c *Connector) answered(reqID string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.comments[reqID]
	return v, ok
}

func (c *Connector) remember(reqID, commentID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.comments[reqID]; ok {
		return
	}
	c.comments[reqID] = commentID
	c.order = append(c.order, reqID)
	if len(c.order) > 10000 {
		delete(c.comments, c.order[0])
		c.order = c.order[1:]
	}
}

func (c *Connector) opts(req event.Event, id, conv string) []event.Option {
	o := []event.Option{event.WithID(id), event.WithCorrelationID(req.ID()), event.WithSubject(conv)}
	if pk := event.PartitionKey(req); pk != "" {
		o = append(o, event.WithPartitionKey(pk))
	}
	return o
}

// errorCode names a failure for the failed event: no_ticket, idempotency_conflict,
// outcome_unknown, http_<status> for the vendor's error answers, else the pipeline's outcome
// (circuit_open, timeout, rate_limited, throttled, bulkhead_full) or unavailable (transport
// failures).
func errorCode(err error) string {
	var je *jira.Error
	var ze *zendesk.Error
	var fail *resilience.Error
	switch {
	case errors.Is(err, errNoTicket):
		return "no_ticket"
	case errors.Is(err, errKeyConflict):
		return "idempotency_conflict"
	case errors.Is(err, errAmbiguous):
		return "outcome_unknown"
	case errors.As(err, &je):
		return "http_" + itoa(je.Status)
	case errors.As(err, &ze):
		return "http_" + itoa(ze.Status)
	case errors.As(err, &fail) && fail.Outcome != audit.OutcomeError:
		return fail.Outcome
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return "unavailable"
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func capText(s string) string { return capRunes(pii.Redact(s), 2000) }

func capRunes(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n])
	}
	return s
}
