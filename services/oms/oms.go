// Package oms is the order management system (OMS) tool connector. The OMS API it speaks is
// documented in pkg/wire/oms (a typical Chinese e-commerce OMS: JSON envelope, HMAC-SHA256
// request signature with app_key, timestamp, nonce and sign) and simulated by sandbox/oms.
//
// Two flows:
//
//   - Order lookup. omni.tool.oms.lookup.requested (from the desk) names a phone (the buyer's
//     recent orders) or an order number. The connector asks the OMS through the route's
//     resilience pipeline and answers omni.tool.oms.lookup.completed with the orders — items,
//     amounts, status and waybills, so the desk's 360 panel shows them and the logistics tool can
//     track them — or omni.tool.oms.lookup.failed with a manual fallback. Phones never appear in
//     clear in the answer (the query is echoed masked; receivers are masked). Answers are cached
//     briefly (OMS_CACHE_TTL) and a cached answer is served, with its as_of time, when the OMS
//     fails. When the request names a conversation, the orders found are remembered for it (see
//     ContextBucket).
//
//   - Service-record sync. On omni.desk.conversation.closed, if orders were looked up in the
//     conversation, the connector writes its service record (summary, assignee, outcome,
//     channels, times, conversation id) to the after-sales archive of the order — the one looked
//     up by number, else the buyer's newest — and publishes omni.tool.oms.archive.completed (or,
//     once the OMS refused it or the redeliveries ran out, .failed). The OMS keys records by
//     conversation id and the result event's id derives from it, so a redelivered close writes
//     nothing twice and publishes nothing new. Conversations without an order lookup are not
//     archived.
//
//   - Summaries on the archive. omni.tool.ai.summary.completed (the assist connector's summary of
//     a close) joins the service record of its conversation, if one was or will be archived: in
//     the record itself when the summary comes before the close is archived, otherwise appended
//     to the archived record as a remark keyed by the summary's event id (idempotent in the OMS).
//     The close never waits for a summary, so one that never comes loses nothing; the summary of
//     an older close than the one kept adds nothing. See summaries.go.
package oms

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/cache"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/pii"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
	"github.com/omnibus-dev/omnibus/pkg/service"
	omswire "github.com/omnibus-dev/omnibus/pkg/wire/oms"
	"github.com/omnibus-dev/omnibus/schemas"
)

// Event types (each is also its subject).
const (
	TypeLookupRequested   = schemas.TypeToolOmsLookupRequested
	TypeLookupCompleted   = schemas.TypeToolOmsLookupCompleted
	TypeLookupFailed      = schemas.TypeToolOmsLookupFailed
	TypeArchiveCompleted  = schemas.TypeToolOmsArchiveCompleted
	TypeArchiveFailed     = schemas.TypeToolOmsArchiveFailed
	TypeConversationClose = schemas.TypeDeskConversationClosed
	TypeSummaryCompleted  = schemas.TypeToolAiSummaryCompleted
)

func route(t string) connector.Route { return connector.Route{Subject: t, Type: t} }

var (
	RouteLookup  = route(TypeLookupRequested)
	RouteClosed  = route(TypeConversationClose)
	RouteSummary = route(TypeSummaryCompleted)
	// Spec declares the connector.
	Spec = connector.Spec{
		Name:        "oms",
		Buckets:     []string{ContextBucket},
		Description: "order lookups by phone or order number; service records of closed conversations, with their summaries, archived on their order",
		Consumes:    []connector.Route{RouteLookup, RouteClosed, RouteSummary},
		Produces: append([]connector.Route{route(TypeLookupCompleted), route(TypeLookupFailed),
			route(TypeArchiveCompleted), route(TypeArchiveFailed)}, connector.ResilienceRoutes("oms")...),
	}
)

// Archive redelivery: a transient failure is retried by the bus with this backoff; the last
// delivery that still fails publishes archive.failed.
var (
	archiveMaxDeliver = 6
	archiveBackoff    = []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute, 5 * time.Minute}
)

// Query is the query of a lookup request.
type Query struct {
	Kind  string `json:"kind"` // phone or order_no
	Value string `json:"value"`
}

// LookupRequest is the data of omni.tool.oms.lookup.requested.
type LookupRequest struct {
	CustomerID     string `json:"customer_id,omitempty"`
	ConversationID string `json:"conversation_id,omitempty"`
	Query          Query  `json:"query"`
	Limit          int    `json:"limit,omitempty"`
}

// AnswerQuery is the query echoed in an answer: an order number in clear, a phone masked.
type AnswerQuery struct {
	Kind   string `json:"kind"`
	Value  string `json:"value,omitempty"`
	Masked string `json:"masked,omitempty"`
}

// LookupAnswer is the data of omni.tool.oms.lookup.completed and .failed.
type LookupAnswer struct {
	CustomerID     string      `json:"customer_id,omitempty"`
	ConversationID string      `json:"conversation_id,omitempty"`
	Query          AnswerQuery `json:"query"`
	Found          *bool       `json:"found,omitempty"`
	Total          *int        `json:"total,omitempty"`
	AsOf           *time.Time  `json:"as_of,omitempty"`
	Orders         *[]Order    `json:"orders,omitempty"`
	ErrorCode      string      `json:"error_code,omitempty"`
	Error          string      `json:"error,omitempty"`
	Fallback       *Fallback   `json:"fallback,omitempty"`
}

// Fallback is what an agent can do instead.
type Fallback struct {
	ManualURL string `json:"manual_url,omitempty"`
	Note      string `json:"note,omitempty"`
}

// ArchiveResult is the data of omni.tool.oms.archive.completed and .failed.
type ArchiveResult struct {
	ConversationID string    `json:"conversation_id"`
	CustomerID     string    `json:"customer_id,omitempty"`
	OrderNo        string    `json:"order_no"`
	Outcome        string    `json:"outcome,omitempty"`
	RecordID       string    `json:"record_id,omitempty"`
	Duplicate      *bool     `json:"duplicate,omitempty"`
	ErrorCode      string    `json:"error_code,omitempty"`
	Error          string    `json:"error,omitempty"`
	Fallback       *Fallback `json:"fallback,omitempty"`
}

// SummaryCompleted is the part of omni.tool.ai.summary.completed the connector reads.
type SummaryCompleted struct {
	ConversationID string    `json:"conversation_id"`
	CustomerID     string    `json:"customer_id,omitempty"`
	ClosedAt       time.Time `json:"closed_at"`
	Summary        string    `json:"summary"`
	BusinessType   string    `json:"business_type,omitempty"`
	Source         string    `json:"source"`
}

// Closed is the part of omni.desk.conversation.closed the connector reads.
type Closed struct {
	Conversation struct {
		ID          string    `json:"id"`
		CustomerID  string    `json:"customer_id"`
		Channels    []string  `json:"channels"`
		OpenedAt    time.Time `json:"opened_at"`
		ClosedAt    time.Time `json:"closed_at"`
		CloseReason string    `json:"close_reason"`
		Assignee    string    `json:"assignee"`
	} `json:"conversation"`
	Reason string `json:"reason"`
}

// lookupKey is a normalised lookup (the cache key).
type lookupKey struct {
	Kind, Value string
	Limit       int
}

// found is a cached lookup answer.
type found struct {
	Orders []Order
	Total  int
	AsOf   time.Time
}

// Service returns the connector as a service.
func Service() service.Service { return connector.Define(Spec, setup) }

type conn struct {
	rt      *connector.Runtime
	cfg     *Config
	oms     *client
	store   *contextStore
	lookups *cache.Cache[lookupKey, found]
}

func setup(ctx context.Context, rt *connector.Runtime, cfg *Config) error {
	reg, err := rt.Resilience()
	if err != nil {
		return err
	}
	store, err := openContextStore(ctx, rt, cfg.ContextTTL, cfg.ContextReplicas)
	if err != nil {
		return err
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 90 * time.Second, Proxy: http.ProxyFromEnvironment}}
	oms, err := newClient(cfg, hc, reg)
	if err != nil {
		return err
	}
	if err := oms.checkVendor(ctx, rt, reg); err != nil {
		return err
	}
	c := &conn{rt: rt, cfg: cfg, store: store, oms: oms,
		lookups: cache.New[lookupKey, found](cache.Options{Name: "oms_lookup", TTL: cfg.CacheTTL,
			MaxEntries: cfg.CacheSize, StaleIfError: cfg.StaleIfError, MeterProvider: rt.Meter})}
	if err := rt.Consume(ctx, RouteLookup, c.onLookup, bus.ConsumerConfig{Concurrency: cfg.Concurrency,
		MaxAckPending: max(1024, cfg.Concurrency)}); err != nil {
		return err
	}
	if err := rt.Consume(ctx, RouteClosed, c.onClosed, bus.ConsumerConfig{Concurrency: cfg.Concurrency,
		MaxAckPending: max(1024, cfg.Concurrency), MaxDeliver: archiveMaxDeliver, Backoff: archiveBackoff}); err != nil {
		return err
	}
	return rt.Consume(ctx, RouteSummary, c.onSummary, bus.ConsumerConfig{Durable: "oms-summary", Concurrency: cfg.Concurrency,
		MaxAckPending: max(1024, cfg.Concurrency), MaxDeliver: archiveMaxDeliver, Backoff: archiveBackoff})
}

// ErrQuery is wrapped for a lookup query the OMS cannot be asked.
var ErrQuery = errors.New("unsupported order query")

func (c *conn) normalize(r LookupRequest) (lookupKey, error) {
	limit := r.Limit
	if limit == 0 {
		limit = c.cfg.DefaultLimit
	}
	if limit < 1 || limit > 20 {
		return lookupKey{}, fmt.Errorf("%w: limit %d outside 1..20", ErrQuery, limit)
	}
	switch r.Query.Kind {
	case "phone":
		if !strings.HasPrefix(r.Query.Value, "+") || len(r.Query.Value) < 9 || len(r.Query.Value) > 16 || strings.Trim(r.Query.Value[1:], "0123456789") != "" {
			return lookupKey{}, fmt.Errorf("%w: the phone is not E.164", ErrQuery)
		}
		return lookupKey{Kind: "phone", Value: r.Query.Value, Limit: limit}, nil
	case "order_no":
		v := strings.TrimSpace(r.Query.Value)
		if !omswire.ValidOrderNo(v) {
			return lookupKey{}, fmt.Errorf("%w: %q is not an order number", ErrQuery, clip(v, 64))
		}
		return lookupKey{Kind: "order_no", Value: v, Limit: 1}, nil
	}
	return lookupKey{}, fmt.Errorf("%w: kind %q (phone or order_no)", ErrQuery, r.Query.Kind)
}

// answerQuery echoes a query without the phone in clear.
func answerQuery(q Query) AnswerQuery {
	if q.Kind == "phone" {
		return AnswerQuery{Kind: "phone", Masked: pii.MaskPhone(q.Value)}
	}
	if omswire.ValidOrderNo(q.Value) {
		return AnswerQuery{Kind: "order_no", Value: q.Value}
	}
	return AnswerQuery{Kind: "order_no", Value: "invalid"}
}

func (c *conn) load(ctx context.Context, k lookupKey) (found, error) {
	now := time.Now().UTC()
	call := resilience.CallFrom(ctx)
	if k.Kind == "order_no" {
		call.Key = k.Value
		o, ok, err := c.oms.order(ctx, call, k.Value)
		switch {
		case err != nil:
			return found{}, err
		case !ok:
			return found{Orders: []Order{}, AsOf: now}, nil
		}
		return found{Orders: []Order{mapOrder(o)}, Total: 1, AsOf: now}, nil
	}
	page, err := c.oms.ordersByPhone(ctx, call, k.Value, k.Limit)
	if err != nil {
		return found{}, err
	}
	f := found{Orders: make([]Order, 0, len(page.Orders)), Total: page.Total, AsOf: now}
	for i, o := range page.Orders {
		if i == k.Limit {
			break
		}
		f.Orders = append(f.Orders, mapOrder(o))
	}
	return f, nil
}

// onLookup answers one lookup request; the answer's id derives from the request's.
func (c *conn) onLookup(ctx context.Context, d bus.Delivery) error {
	var req LookupRequest
	if err := event.DecodeData(d.Event, &req); err != nil {
		return bus.Permanent(err)
	}
	ans := LookupAnswer{CustomerID: req.CustomerID, ConversationID: req.ConversationID, Query: answerQuery(req.Query)}
	k, err := c.normalize(req)
	var res cache.Result[found]
	if err == nil {
		call := resilience.Call{CustomerID: req.CustomerID, CorrelationID: d.Event.ID()}
		bctx, cancel := context.WithTimeout(resilience.WithCall(ctx, call), c.cfg.LookupBudget)
		res, err = c.lookups.Fetch(bctx, k, c.load)
		cancel()
	}
	typ := TypeLookupCompleted
	if err == nil {
		isFound := len(res.Value.Orders) > 0
		total, asOf := max(res.Value.Total, len(res.Value.Orders)), res.Value.AsOf
		orders := res.Value.Orders
		if orders == nil {
			orders = []Order{}
		}
		ans.Found, ans.Total, ans.AsOf, ans.Orders = &isFound, &total, &asOf, &orders
		if res.Stale {
			c.rt.Log.WarnContext(ctx, "OMS failed, served a cached lookup", "request", d.Event.ID(), "age", res.Age.Round(time.Second), "err", redact(res.LoadErr))
		}
		if isFound && req.ConversationID != "" {
			if err := c.remember(ctx, req, k, res.Value.Orders); err != nil {
				return err // redelivered: the answer below is then published once
			}
		}
	} else {
		typ = TypeLookupFailed
		ans.ErrorCode, ans.Error = describe(err, c.cfg.LookupBudget)
		ans.Fallback = &Fallback{ManualURL: c.cfg.ManualURL, Note: "订单系统暂时无法查询，请在 OMS 后台手动查询 / OMS unavailable: look the orders up by hand"}
		c.rt.Log.WarnContext(ctx, "order lookup failed", "request", d.Event.ID(), "kind", req.Query.Kind, "code", ans.ErrorCode, "err", redact(err))
	}
	e, err := c.rt.NewEvent(typ, ans, event.WithID(d.Event.ID()+":answer"), event.WithCorrelationID(d.Event.ID()),
		event.WithSubject(subjectOf(req)), event.WithPartitionKey(event.PartitionKey(d.Event)))
	if err != nil {
		return bus.Permanent(err)
	}
	return c.rt.Publish(ctx, bus.Outgoing{Subject: typ, Event: e})
}

func subjectOf(r LookupRequest) string {
	if r.ConversationID != "" {
		return r.ConversationID
	}
	return r.CustomerID
}

func (c *conn) remember(ctx context.Context, req LookupRequest, k lookupKey, orders []Order) error {
	_, err := c.store.update(ctx, req.ConversationID, func(cc *convContext) {
		if req.CustomerID != "" {
			cc.CustomerID = req.CustomerID
		}
		if k.Kind == "order_no" {
			cc.Pinned = orders[0].OrderNo
			return
		}
		cc.Orders = cc.Orders[:0]
		for _, o := range orders {
			cc.Orders = append(cc.Orders, o.OrderNo)
		}
	})
	return err
}

// outcome of a closed conversation for the OMS.
func outcome(cl Closed) string {
	if cl.Reason == "idle" || cl.Conversation.CloseReason == "idle" {
		return "idle"
	}
	return "resolved"
}

// summary is the record's text: channels, times, how it ended and who handled it. The agent's
// close reason is free text, so personal data in it is masked.
func summary(cl Closed) string {
	v := cl.Conversation
	var b strings.Builder
	fmt.Fprintf(&b, "客服会话（%s）%s 至 %s，历时 %s。", strings.Join(v.Channels, "、"),
		omswire.FormatTime(v.OpenedAt), omswire.FormatTime(v.ClosedAt), v.ClosedAt.Sub(v.OpenedAt).Round(time.Minute))
	reason := cl.Reason
	if reason == "" {
		reason = v.CloseReason
	}
	if outcome(cl) == "idle" {
		b.WriteString("客户长时间未回复，会话自动关闭。")
	} else {
		fmt.Fprintf(&b, "结束原因：%s。", clip(pii.Redact(reason), 1000))
	}
	if v.Assignee != "" {
		fmt.Fprintf(&b, "处理客服：%s。", clip(v.Assignee, 256))
	}
	fmt.Fprintf(&b, "omnibus 会话 %s。", v.ID)
	return b.String()
}

// onClosed archives the service record of a closed conversation on its order.
func (c *conn) onClosed(ctx context.Context, d bus.Delivery) error {
	var cl Closed
	if err := event.DecodeData(d.Event, &cl); err != nil || cl.Conversation.ID == "" {
		return bus.Permanent(fmt.Errorf("undecodable closed event: %w", err))
	}
	conv := cl.Conversation
	cc, ok, err := c.store.get(ctx, conv.ID)
	if err != nil {
		return err
	}
	order := cc.Order()
	if !ok || order == "" {
		return nil // no order was looked up in this conversation: nothing to archive
	}
	channels := conv.Channels
	if channels == nil {
		channels = []string{}
	}
	text, included := summary(cl), ""
	if sm := cc.Summary; sm != nil && sameClose(sm.ClosedAt, conv.ClosedAt) {
		// The summary of this close came first: the record carries it.
		text, included = clip(text+summaryLine(*sm), maxRecordSummary), sm.EventID
	}
	rec := omswire.ServiceRecord{OrderNo: order, ExternalID: conv.ID, Source: "omnibus", Summary: text,
		Agent: conv.Assignee, Outcome: outcome(cl), Channels: channels,
		OpenedAt: omswire.FormatTime(conv.OpenedAt), ClosedAt: omswire.FormatTime(conv.ClosedAt)}
	actx, cancel := context.WithTimeout(ctx, c.cfg.ArchiveBudget)
	res, err := c.oms.archive(actx, resilience.Call{CustomerID: conv.CustomerID, CorrelationID: d.Event.ID(), Key: order}, rec)
	cancel()
	out := ArchiveResult{ConversationID: conv.ID, CustomerID: conv.CustomerID, OrderNo: order, Outcome: rec.Outcome}
	typ := TypeArchiveCompleted
	if err != nil {
		if !bus.IsPermanent(err) && d.NumDelivered < uint64(archiveMaxDeliver) {
			c.rt.Log.WarnContext(ctx, "archive failed, will retry", "conversation", conv.ID, "delivery", d.NumDelivered, "err", redact(err))
			return err
		}
		typ = TypeArchiveFailed
		out.ErrorCode, out.Error = describe(err, c.cfg.ArchiveBudget)
		out.Fallback = &Fallback{ManualURL: c.cfg.ManualURL, Note: "服务记录未能写入订单售后档案，请手动登记 / record the service on the order by hand"}
		c.rt.Log.ErrorContext(ctx, "archive failed for good", "conversation", conv.ID, "order", order, "code", out.ErrorCode, "err", redact(err))
	} else {
		dup := res.Duplicate
		out.RecordID, out.Duplicate = res.RecordID, &dup
		if dup {
			included = "" // the record the OMS kept was written earlier: what it carries is not known here
		}
		if err := c.archivedWith(ctx, d, conv.ID, conv.CustomerID, order, res.RecordID, included); err != nil {
			return err
		}
	}
	if out.CustomerID == "" {
		out.CustomerID = cc.CustomerID
	}
	e, err := c.rt.NewEvent(typ, out, event.WithID("oms:archive:"+conv.ID), event.WithCorrelationID(d.Event.ID()),
		event.WithSubject(conv.ID), event.WithPartitionKey(event.PartitionKey(d.Event)))
	if err != nil {
		return bus.Permanent(err)
	}
	return c.rt.Publish(ctx, bus.Outgoing{Subject: typ, Event: e})
}

// describe turns an error into a result's error_code and error (no personal data).
func describe(err error, budget time.Duration) (code, msg string) {
	var oe *omswire.Error
	switch {
	case errors.Is(err, ErrQuery):
		return "unsupported_query", redact(err)
	case errors.As(err, &oe):
		if oe.Code == omswire.CodeUnknownResponse {
			return fmt.Sprintf("http_%d", oe.HTTPStatus), fmt.Sprintf("the OMS answered HTTP %d without an OMS envelope", oe.HTTPStatus)
		}
		return fmt.Sprint(oe.Code), redact(fmt.Errorf("the OMS answered code %d (HTTP %d): %s", oe.Code, oe.HTTPStatus, oe.Msg))
	case errors.Is(err, omswire.ErrMalformedBody):
		return "malformed_response", redact(err)
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout", fmt.Sprintf("the OMS did not answer within %s", budget)
	}
	var re *resilience.Error
	if errors.As(err, &re) {
		return re.Code(), redact(err)
	}
	return "unavailable", redact(err)
}

func redact(err error) string {
	if err == nil {
		return ""
	}
	return clip(pii.Redact(err.Error()), 2000)
}
