// Package assist is the AI assist tool connector: it answers omni.tool.ai.suggest.requested (the
// desk's "AI suggestion" button, with the conversation's recent turns) with one
// omni.tool.ai.suggest.completed — a reply suggestion and its provenance — or .failed with the
// reason and a fallback text, each with correlationid = the request's id and the deterministic id
// assist:suggest:<request id>, so a redelivered request is answered once.
//
// The suggestion comes from an OpenAI-compatible chat completions API (OpenAI, Aliyun Bailian's
// DashScope compatible mode; vendors/README.md §13): POST <ASSIST_API_BASE>/chat/completions with
// a bearer key and "stream": true, read as server-sent events (ReadStream) and assembled. The
// call goes through the resilience route llm.chat (per-attempt timeout within ASSIST_BUDGET,
// retries on 429 after Retry-After, 5xx, timeouts and cut streams, breaker, bulkhead, one masked
// audit record per call on omni.audit.assist).
//
// No personal data leaves: phone, ID-card and bank-card numbers and e-mails in the turns are
// replaced by stable placeholders (<PHONE_1>, ...; pii.Placeholders) before the prompt is built,
// and restored in the suggestion the agent sees. The provenance keeps the model's text as it
// wrote it, placeholders and all, with the provider, model, prompt template id and SHA-256, the
// request's id, the latency and the vendor's token counts.
//
// The request's knowledge-base articles (the desk's knowledge base) ground the prompt and are
// named in the provenance; they are also the fallback: a model that has not started writing
// within ASSIST_FIRST_TOKEN_TIMEOUT (down, erroring or silent) is answered at once with .failed
// carrying them. While the model writes, its pieces are streamed to the desk as live events
// (live.go).
//
// # Summaries and automatic tickets
//
// The connector keeps a read model of conversations (transcript.go): every text message of
// omni.desk.message.added — chat in and out, and calls' final caller segments, which the unifier
// adds as voice inbound messages — is appended, once by its event_id, to its conversation's
// bounded transcript in the JetStream KV bucket assist_transcripts (ASSIST_TRANSCRIPT_*).
//
// On omni.desk.conversation.closed it publishes exactly one omni.tool.ai.summary.completed
// (summary.go; id assist:summary:<conversation id>:<closed_at unix ms>, correlationid the close's
// id, subject the conversation): the model's summary from the masked transcript (prompt template
// assist.summary.v1, JSON answer with the business type, provenance with the template's hash and
// the messages' ids), its placeholders restored and then masked for display (138****5678); or,
// when the model is down, not answering within ASSIST_SUMMARY_BUDGET or off the schema, the rules'
// extractive summary (source rules): the first customer request, the last agent reply and the
// order numbers, waybills and amounts found, with a keyword (zh/en) business type.
//
// With ASSIST_AUTO_TICKETS (tickets.go), a call that ends (omni.desk.call.updated, state ended)
// and a chat that closes are searched for order numbers in the OMS's formats, SF and Cainiao
// waybills, amounts and the customer's request — by the model (assist.extract.v1, response_format
// json_object or json_schema, every value checked against the transcript) and by the rules — and
// something actionable (an identifier with a request, or a complaint) becomes one
// omni.tool.ticket.create.requested routed by business_type (id assist:ticket:<call id> or
// assist:ticket:<conversation id>:<closed ms>; priority high for a complaint or a negative
// customer). A close skips the ticket when a call of the conversation already asked for one.
//
// Both jobs ask the model through their own resilience route, llm.jobs (a small bulkhead that
// waits, its own breaker), apart from the agents' llm.chat. Both first wait for the transcript
// consumer to have applied every message stored before their event (its ack floor;
// ASSIST_SETTLE_DELIVERIES), and record what they did in the transcript, so a redelivered or
// replayed close or call end publishes nothing twice.
package assist

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/pii"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/schemas"
)

// Event types and subjects.
const (
	TypeRequested    = schemas.TypeToolAiSuggestRequested
	TypeCompleted    = schemas.TypeToolAiSuggestCompleted
	TypeFailed       = schemas.TypeToolAiSuggestFailed
	SubjectRequested = TypeRequested
	SubjectCompleted = TypeCompleted
	SubjectFailed    = TypeFailed
	SubjectAudit     = "omni.audit.assist"

	TypeMessageAdded       = schemas.TypeDeskMessageAdded
	TypeClosed             = schemas.TypeDeskConversationClosed
	TypeCallUpdated        = schemas.TypeDeskCallUpdated
	TypeSummary            = schemas.TypeToolAiSummaryCompleted
	TypeTicketRequested    = schemas.TypeToolTicketCreateRequested
	SubjectMessageAdded    = TypeMessageAdded
	SubjectClosed          = TypeClosed
	SubjectCallUpdated     = TypeCallUpdated
	SubjectSummary         = TypeSummary
	SubjectTicketRequested = TypeTicketRequested
)

// Routes and the Spec.
var (
	RouteRequested = connector.Route{Subject: SubjectRequested, Type: TypeRequested}
	RouteCompleted = connector.Route{Subject: SubjectCompleted, Type: TypeCompleted}
	RouteFailed    = connector.Route{Subject: SubjectFailed, Type: TypeFailed}
	// The read model's and the jobs' routes.
	RouteMessageAdded    = connector.Route{Subject: SubjectMessageAdded, Type: TypeMessageAdded}
	RouteClosed          = connector.Route{Subject: SubjectClosed, Type: TypeClosed}
	RouteCallUpdated     = connector.Route{Subject: SubjectCallUpdated, Type: TypeCallUpdated}
	RouteSummary         = connector.Route{Subject: SubjectSummary, Type: TypeSummary}
	RouteTicketRequested = connector.Route{Subject: SubjectTicketRequested, Type: TypeTicketRequested}
	// Spec declares the connector. Audit records and route alerts are published by its
	// resilience registry.
	Spec = connector.Spec{
		Name:        "assist",
		Buckets:     []string{TranscriptBucket},
		Description: "AI reply suggestions, conversation summaries and automatic tickets from an OpenAI-compatible chat completions API (Bailian, OpenAI), personal data masked",
		Consumes:    []connector.Route{RouteRequested, RouteMessageAdded, RouteClosed, RouteCallUpdated},
		Produces: append([]connector.Route{RouteCompleted, RouteFailed, RouteDelta, RouteSummary, RouteTicketRequested},
			connector.ResilienceRoutes("assist")...),
	}
)

// Service returns the connector as a service.
func Service() service.Service { return connector.Define(Spec, setup) }

// request is the data of omni.tool.ai.suggest.requested.
type request struct {
	ConversationID string    `json:"conversation_id"`
	CustomerID     string    `json:"customer_id,omitempty"`
	Language       string    `json:"language,omitempty"`
	Context        []turn    `json:"context"`
	AgentID        string    `json:"agent_id,omitempty"`
	Knowledge      []article `json:"knowledge,omitempty"`
}

// completed is the data of omni.tool.ai.suggest.completed.
type completed struct {
	ConversationID string       `json:"conversation_id,omitempty"`
	CustomerID     string       `json:"customer_id,omitempty"`
	Provider       string       `json:"provider"`
	Model          string       `json:"model,omitempty"`
	Suggestions    []suggestion `json:"suggestions"`
	Provenance     Provenance   `json:"provenance"`
}

type suggestion struct {
	Text string `json:"text"`
}

// Provenance is where a suggestion came from.
type Provenance struct {
	Provider             string   `json:"provider"`
	Model                string   `json:"model"`
	PromptTemplateID     string   `json:"prompt_template_id"`
	PromptTemplateSHA256 string   `json:"prompt_template_sha256"`
	InputEventIDs        []string `json:"input_event_ids"`
	LatencyMS            int64    `json:"latency_ms"`
	Usage                *Usage   `json:"usage,omitempty"`
	FinishReason         string   `json:"finish_reason,omitempty"`
	// KnowledgeArticleIDs are the knowledge-base articles the prompt included, best first.
	KnowledgeArticleIDs []string `json:"knowledge_article_ids,omitempty"`
	// Text is the suggestion as the model wrote it: placeholders, not personal data.
	Text string `json:"text"`
}

// failed is the data of omni.tool.ai.suggest.failed.
type failed struct {
	ConversationID string    `json:"conversation_id,omitempty"`
	CustomerID     string    `json:"customer_id,omitempty"`
	Provider       string    `json:"provider"`
	ErrorCode      string    `json:"error_code,omitempty"`
	Error          string    `json:"error"`
	Fallback       *fallback `json:"fallback,omitempty"`
}

// fallback is what the agent can do instead: the note, and the request's knowledge-base
// articles to answer from (tool.defs.json fallback).
type fallback struct {
	ManualURL string    `json:"manual_url,omitempty"`
	Note      string    `json:"note,omitempty"`
	Articles  []article `json:"articles,omitempty"`
}

// maxText bounds a suggestion (the schema's maxLength, in characters).
const maxText = 4000

// Connector is the running connector.
type Connector struct {
	cfg    Config
	rt     *connector.Runtime
	route  *resilience.Route // llm.chat: the agents' suggestions
	jobs   *resilience.Route // llm.jobs: summaries and extractions
	client *chatClient
	now    func() time.Time
	// transcripts is the conversations' read model (transcript.go), opened by Open.
	transcripts *transcripts
}

func setup(ctx context.Context, rt *connector.Runtime, cfg *Config) error {
	c, err := New(rt, *cfg, Options{})
	if err != nil {
		return err
	}
	if err := c.checkVendor(ctx); err != nil {
		return err
	}
	if err := c.Open(ctx); err != nil {
		return err
	}
	if err := rt.Consume(ctx, RouteRequested, c.Handle, bus.ConsumerConfig{
		Concurrency:   cfg.Concurrency,
		MaxAckPending: max(256, cfg.Concurrency),
		AckWait:       cfg.Budget + 30*time.Second,
	}); err != nil {
		return err
	}
	// The read model: quick KV writes, a few at once (writes to one conversation are
	// compare-and-set).
	if err := rt.Consume(ctx, RouteMessageAdded, c.HandleMessage, bus.ConsumerConfig{Durable: transcriptConsumer,
		Concurrency: 4, MaxAckPending: 256}); err != nil {
		return err
	}
	// The jobs wait (100 ms apart, ASSIST_SETTLE_DELIVERIES times) for the read model to catch
	// up, then ask the model twice at most within ASSIST_SUMMARY_BUDGET each.
	jobs := bus.ConsumerConfig{Concurrency: cfg.Concurrency, MaxAckPending: max(256, cfg.Concurrency),
		MaxDeliver: cfg.SettleDeliveries + 5, AckWait: 2*cfg.SummaryBudget + 30*time.Second}
	closed, calls := jobs, jobs
	closed.Durable, calls.Durable = "assist-conversation-closed", "assist-call-updated"
	if err := rt.Consume(ctx, RouteClosed, c.HandleClosed, closed); err != nil {
		return err
	}
	return rt.Consume(ctx, RouteCallUpdated, c.HandleCallUpdated, calls)
}

// Open opens the conversations' read model (the KV bucket TranscriptBucket).
func (c *Connector) Open(ctx context.Context) error {
	ts, err := openTranscripts(ctx, c.rt, c.cfg)
	if err != nil {
		return err
	}
	c.transcripts = ts
	return nil
}

// Options are the knobs tests set; production uses the zero value.
type Options struct {
	// HTTP is the vendor's HTTP client. Default: one with no overall timeout (every attempt is
	// bounded by the route's timeout).
	HTTP *http.Client
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// New builds the connector on rt, its route on rt's resilience registry.
func New(rt *connector.Runtime, cfg Config, o Options) (*Connector, error) {
	if o.HTTP == nil {
		o.HTTP = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	reg, err := rt.Resilience()
	if err != nil {
		return nil, err
	}
	route, err := reg.Route(chatRoute(cfg))
	if err != nil {
		return nil, err
	}
	jobs, err := reg.Route(jobRoute(cfg))
	if err != nil {
		return nil, err
	}
	return &Connector{cfg: cfg, rt: rt, route: route, jobs: jobs, now: o.Now,
		client: &chatClient{http: o.HTTP, url: cfg.APIBase + "/chat/completions", key: cfg.APIKey}}, nil
}

// Handle answers one request delivery with one result event.
func (c *Connector) Handle(ctx context.Context, d bus.Delivery) error {
	var req request
	if err := event.DecodeData(d.Event, &req); err != nil {
		return bus.Permanent(err)
	}
	if len(req.Context) == 0 {
		return bus.Permanent(errors.New("request has no context turns"))
	}
	ph := pii.NewPlaceholders()
	body, err := json.Marshal(chatRequest{Model: c.cfg.Model, Messages: buildPrompt(req.Context, req.Knowledge, req.Language, ph), Stream: true,
		StreamOptions: streamOptions{IncludeUsage: true}, MaxTokens: c.cfg.MaxTokens, Temperature: c.cfg.Temperature})
	if err != nil {
		return bus.Permanent(err)
	}
	budget, cancel := context.WithTimeout(ctx, c.cfg.Budget)
	defer cancel()
	// The model must start writing within ASSIST_FIRST_TOKEN_TIMEOUT, retries included: a model
	// that is down (refused, 5xx, breaker open) or silent is answered with the fallback at once,
	// while the agent still waits at the button.
	call, stopCall := context.WithCancelCause(budget)
	defer stopCall(nil)
	// A window as long as the budget is no window of its own: the budget's timeout applies.
	var wrote atomic.Bool
	window := c.cfg.FirstToken < c.cfg.Budget
	firstDeadline := time.Now().Add(c.cfg.FirstToken)
	if window {
		firstToken := time.AfterFunc(c.cfg.FirstToken, func() {
			if !wrote.Load() {
				stopCall(errFirstToken)
			}
		})
		defer firstToken.Stop()
	}
	start := c.now()
	live := c.streamer(d.Event, req, ph)
	comp, err := resilience.Do(call, c.route, resilience.Call{CustomerID: req.CustomerID, CorrelationID: d.Event.ID(), Key: req.ConversationID},
		func(ctx context.Context, a *resilience.Attempt) (Completion, error) {
			if live != nil {
				live.begin(a.Number())
			}
			comp, err := c.client.complete(ctx, a, body, func(p string) {
				wrote.Store(true)
				if live != nil {
					live.piece(ctx, p)
				}
			})
			if err == nil && live != nil {
				live.end(ctx)
			}
			// A model that fails before writing, with less of the window left than a retry
			// waits, cannot start in time: answer with the fallback now, not at the deadline.
			if window && err != nil && call.Err() == nil && !wrote.Load() && time.Until(firstDeadline) < c.route.Settings().Backoff {
				stopCall(errFirstToken)
			}
			return comp, err
		})
	if err != nil && errors.Is(context.Cause(call), errFirstToken) {
		err = fmt.Errorf("%w (%s)", errFirstToken, c.cfg.FirstToken)
	}
	latency := c.now().Sub(start)
	text := strings.TrimSpace(comp.Text)
	if err == nil && text == "" {
		err = errEmpty
	}
	var out bus.Outgoing
	if err == nil {
		out, err = c.completed(d.Event, req, comp, text, ph, latency)
	} else {
		out, err = c.failed(d.Event, req, err)
	}
	if err != nil {
		return bus.Permanent(err)
	}
	// The budget may be spent: publishing the answer gets its own bound.
	pctx, pcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer pcancel()
	return c.rt.Publish(pctx, out)
}

var (
	errEmpty      = errors.New("the model answered no text")
	errFirstToken = errors.New("the model wrote nothing within ASSIST_FIRST_TOKEN_TIMEOUT")
)

func (c *Connector) options(req event.Event, data request) []event.Option {
	opts := []event.Option{event.WithID("assist:suggest:" + req.ID()), event.WithCorrelationID(req.ID())}
	if data.ConversationID != "" {
		opts = append(opts, event.WithSubject(data.ConversationID))
	}
	if pk := event.PartitionKey(req); pk != "" {
		opts = append(opts, event.WithPartitionKey(pk))
	}
	return opts
}

func (c *Connector) completed(req event.Event, data request, comp Completion, text string, ph *pii.Placeholders, latency time.Duration) (bus.Outgoing, error) {
	model := comp.Model
	if model == "" {
		model = c.cfg.Model
	}
	e, err := c.rt.NewEvent(TypeCompleted, completed{ConversationID: data.ConversationID, CustomerID: data.CustomerID,
		Provider: c.cfg.Provider, Model: model,
		Suggestions: []suggestion{{Text: truncate(ph.Restore(text), maxText)}},
		Provenance: Provenance{Provider: c.cfg.Provider, Model: model, PromptTemplateID: TemplateID, PromptTemplateSHA256: TemplateSHA256,
			InputEventIDs: []string{req.ID()}, LatencyMS: latency.Milliseconds(), Usage: comp.Usage, FinishReason: comp.FinishReason,
			KnowledgeArticleIDs: articleIDs(data.Knowledge), Text: truncate(text, maxText)},
	}, c.options(req, data)...)
	return bus.Outgoing{Subject: SubjectCompleted, Event: e}, err
}

func (c *Connector) failed(req event.Event, data request, cause error) (bus.Outgoing, error) {
	code, msg := "empty", cause.Error()
	fb := &fallback{Note: c.cfg.Fallback, Articles: data.Knowledge}
	var re *resilience.Error
	switch {
	case errors.Is(cause, errFirstToken):
		code = "first_token_timeout"
	case errors.As(cause, &re):
		code = re.Code()
		if re.Fallback != nil {
			fb.ManualURL = re.Fallback.ManualURL
			if re.Fallback.Note != "" {
				fb.Note = re.Fallback.Note
			}
		}
	}
	e, err := c.rt.NewEvent(TypeFailed, failed{ConversationID: data.ConversationID, CustomerID: data.CustomerID,
		Provider: c.cfg.Provider, ErrorCode: truncate(code, 128), Error: truncate(pii.Redact(msg), 2000), Fallback: fb},
		c.options(req, data)...)
	return bus.Outgoing{Subject: SubjectFailed, Event: e}, err
}

// truncate cuts s to at most n characters.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

// articleIDs returns the ids of articles, in order.
func articleIDs(articles []article) []string {
	var ids []string
	for _, a := range articles {
		ids = append(ids, a.ID)
	}
	return ids
}
