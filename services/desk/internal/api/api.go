// Package api is the desk's HTTP API under /api/: conversations, messages and timelines,
// customer 360, replies, tool requests, agents and assignment, close/reopen, alerts, ops stats
// and the live event stream. Every answer comes from the desk's store; every action becomes an
// event on the bus. It is documented by openapi.json (served at /api/openapi.json and kept in
// step with Routes by a test) and protected by OAuth2 bearer tokens (package auth).
package api

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/auth"
	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/httpguard"
	"github.com/omnibus-dev/omnibus/pkg/schema"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/pkg/webhook"
	"github.com/omnibus-dev/omnibus/schemas"
	"github.com/omnibus-dev/omnibus/services/desk/internal/assign"
	"github.com/omnibus-dev/omnibus/services/desk/internal/hub"
	"github.com/omnibus-dev/omnibus/services/desk/internal/store"
)

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the API's OpenAPI 3 document.
func OpenAPI() []byte { return openAPI }

// Event types and subjects the API publishes.
const (
	Source              = "/services/desk"
	TypeSendRequested   = schemas.TypeChannelMessageSendRequested
	TypeCloseRequested  = schemas.TypeConversationCloseRequested
	TypeReopenRequested = schemas.TypeConversationReopenRequested
	TypeAgentUpdated    = schemas.TypeDeskAgentUpdated
	SubjectConversation = "omni.in.desk.conversation"
	SubjectAgentUpdated = "omni.desk.agent.updated"
)

// SubjectSend returns the subject of a reply on channel.
func SubjectSend(channel string) string { return "omni.out." + channel + ".message.send" }

// API serves /api/.
type API struct {
	Store    *store.Store
	Bus      bus.Publisher
	Hub      *hub.Hub
	Assigner *assign.Assigner
	Verifier *auth.Verifier
	Log      *slog.Logger
	// Notify publishes a conversation's inbox row to the open pages after a local change.
	Notify func(ctx context.Context, typ, conversationID string)
	// Schemas says which tool request types exist (default: the embedded schemas).
	Schemas SchemaChecker
	// Done ends the event streams (the service is stopping).
	Done <-chan struct{}
	// Recordings, if set, serves call recordings through signed links (recordings.go).
	Recordings *Recordings
	// DeadLetters, if set, lets supervisors work OMNI_DLQ from /ops (dlq.go).
	DeadLetters bus.DeadLetters
	// CloseNotice, if set, is sent to the customer when an agent closes the conversation (and
	// when it is closed for inactivity): DESK_CLOSE_NOTICE.
	CloseNotice string
	// Disabled, if set, lists the connectors the process runs without because nothing configures
	// them (service.Health.Disabled); /api/ops/routes returns them and /ops shows them.
	Disabled func() []service.Disabled
	// Limit, if set, bounds the requests per token subject (RATE_API_TOKEN): 429 past it.
	Limit *httpguard.Limiter
}

// Route is one API operation.
type Route struct {
	Method, Path string
	Public       bool // no token needed
	Handler      http.HandlerFunc
}

// Routes returns every operation of the API (what openapi.json documents).
func (a *API) Routes() []Route {
	return append([]Route{
		{"GET", "/api/openapi.json", true, a.openapi},
		{"GET", "/api/me", false, a.me},
		{"GET", "/api/conversations", false, a.listConversations},
		{"GET", "/api/conversations/{id}", false, a.getConversation},
		{"GET", "/api/conversations/{id}/messages", false, a.messages},
		{"GET", "/api/conversations/{id}/timeline", false, a.timeline},
		{"POST", "/api/conversations/{id}/read", false, a.markRead},
		{"POST", "/api/conversations/{id}/reply", false, a.reply},
		{"POST", "/api/conversations/{id}/tools/{tool}/{op}", false, a.toolRequest},
		{"POST", "/api/conversations/{id}/assign", false, a.assign},
		{"POST", "/api/conversations/{id}/close", false, a.close},
		{"POST", "/api/conversations/{id}/reopen", false, a.reopen},
		{"GET", "/api/customers/{id}", false, a.customer},
		{"GET", "/api/agents", false, a.agents},
		{"PUT", "/api/agents/{id}", false, a.putAgent},
		{"GET", "/api/alerts", false, a.alerts},
		{"GET", "/api/ops/routes", false, a.opsRoutes},
		{"GET", "/api/events", false, a.events},
		{"GET", "/api/recordings/{call}", true, a.recording}, // the signed link is the credential
	}, slices.Concat(a.knowledgeRoutes(), a.feedbackRoutes(), a.dlqRoutes(), a.callRoutes(), a.noteRoutes(), a.cannedRoutes())...) // kb.go, feedback.go, dlq.go, calls.go, notes.go, canned.go
}

// Mount registers the routes on mux, the non-public ones behind the token check.
func (a *API) Mount(mux *http.ServeMux) {
	for _, r := range a.Routes() {
		var h http.Handler = r.Handler
		if !r.Public {
			h = a.Verifier.Middleware(a.limited(h))
		}
		mux.Handle(r.Method+" "+r.Path, h)
	}
}

// limited refuses, 429 with Retry-After, the requests of a token subject past a.Limit.
func (a *API) limited(h http.Handler) http.Handler {
	if a.Limit == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := principal(r)
		if ok, retry := a.Limit.Allow(p.Subject + "\x00" + p.AgentID); !ok {
			a.Limit.Refuse(w, r, retry, "too many requests with this token; retry after the time in Retry-After")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// --- helpers

type apiError struct {
	Error  string `json:"error"`
	Reason string `json:"reason"`
}

// fail answers code with reason, cut before any library internal it carries (webhook.ClientText).
func fail(w http.ResponseWriter, code int, reason string) {
	webhook.WriteJSON(w, code, apiError{Error: strings.ToLower(strings.ReplaceAll(http.StatusText(code), " ", "_")), Reason: webhook.ClientText(reason)})
}

func (a *API) internal(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, store.ErrNotFound) {
		fail(w, http.StatusNotFound, err.Error())
		return
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return
	}
	a.Log.Error("api", "method", r.Method, "path", r.URL.Path, "err", err)
	fail(w, http.StatusInternalServerError, "internal error")
}

// publishError answers a failed publish: 400 with the schema's reason for invalid data
// (nothing was published), 503 otherwise.
func (a *API) publishError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, schema.ErrInvalid) {
		var ve *schema.ValidationError
		reason := err.Error()
		if errors.As(err, &ve) {
			reason = ve.Reason
		}
		fail(w, http.StatusBadRequest, reason)
		return
	}
	a.Log.Error("publish", "path", r.URL.Path, "err", err)
	fail(w, http.StatusServiceUnavailable, "the bus did not accept the event; try again")
}

const maxBody = 64 << 10

// readJSON decodes the request body (at most maxBody, unknown fields refused) into v; an empty
// body leaves v as is.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", maxBody))
		return false
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return true
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		fail(w, http.StatusBadRequest, "body: "+webhook.ClientReason(err))
		return false
	}
	return true
}

func principal(r *http.Request) auth.Principal {
	p, _ := auth.FromContext(r.Context())
	return p
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// conversation loads the {id} conversation or answers 400/404.
func (a *API) conversation(w http.ResponseWriter, r *http.Request) (store.Conversation, bool) {
	id := r.PathValue("id")
	if !uuidRE.MatchString(id) {
		fail(w, http.StatusBadRequest, "conversation id must be a UUID")
		return store.Conversation{}, false
	}
	c, err := a.Store.GetConversation(r.Context(), strings.ToLower(id))
	if err != nil {
		a.internal(w, r, err)
		return c, false
	}
	return c, true
}

// --- handlers

func (a *API) openapi(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPI)
}

func (a *API) me(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	out := map[string]any{"principal": p}
	if ag, err := a.Store.GetAgent(r.Context(), p.AgentID); err == nil {
		out["agent"] = ag
	}
	webhook.WriteJSON(w, http.StatusOK, out)
}

var channelRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

func (a *API) listConversations(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.Filter{Status: q.Get("status"), Channel: q.Get("channel"), Assignee: q.Get("assignee")}
	switch f.Status {
	case "", "open", "closed", "merged":
	case "all":
		f.Status = ""
	default:
		fail(w, http.StatusBadRequest, "status must be open, closed, merged or all")
		return
	}
	if f.Channel != "" && !channelRE.MatchString(f.Channel) {
		fail(w, http.StatusBadRequest, "channel must match ^[a-z][a-z0-9_]*$")
		return
	}
	if f.Assignee == "me" {
		f.Assignee = principal(r).AgentID
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 500 {
			fail(w, http.StatusBadRequest, "limit must be 1-500")
			return
		}
		f.Limit = n
	}
	list, err := a.Store.ListConversations(r.Context(), f)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	webhook.WriteJSON(w, http.StatusOK, map[string]any{"conversations": list})
}

func (a *API) getConversation(w http.ResponseWriter, r *http.Request) {
	if c, ok := a.conversation(w, r); ok {
		webhook.WriteJSON(w, http.StatusOK, c)
	}
}

func (a *API) messages(w http.ResponseWriter, r *http.Request) {
	c, ok := a.conversation(w, r)
	if !ok {
		return
	}
	msgs, err := a.Store.Messages(r.Context(), c.ID)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	webhook.WriteJSON(w, http.StatusOK, map[string]any{"messages": msgs})
}

func (a *API) timeline(w http.ResponseWriter, r *http.Request) {
	c, ok := a.conversation(w, r)
	if !ok {
		return
	}
	items, err := a.Store.Timeline(r.Context(), c.ID)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	marks, alert, err := a.sentiment(r, c)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	a.signLinks(items)
	webhook.WriteJSON(w, http.StatusOK, map[string]any{"conversation": c, "items": items, "sentiment": marks, "sentiment_alert": alert})
}

func (a *API) markRead(w http.ResponseWriter, r *http.Request) {
	c, ok := a.conversation(w, r)
	if !ok {
		return
	}
	if err := a.Store.MarkRead(r.Context(), c.ID); err != nil {
		a.internal(w, r, err)
		return
	}
	a.notify(r.Context(), "desk.read", c.ID)
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) notify(ctx context.Context, typ, id string) {
	if a.Notify != nil {
		a.Notify(ctx, typ, id)
	}
}

// ReplyRequest is the body of POST /api/conversations/{id}/reply.
type ReplyRequest struct {
	Text    string `json:"text"`
	Channel string `json:"channel,omitempty"`
}

func (a *API) reply(w http.ResponseWriter, r *http.Request) {
	c, ok := a.conversation(w, r)
	if !ok {
		return
	}
	var req ReplyRequest
	if !readJSON(w, r, &req) {
		return
	}
	req.Text = strings.TrimSpace(req.Text)
	if req.Text == "" || len([]rune(req.Text)) > 10000 {
		fail(w, http.StatusBadRequest, "text must be 1-10000 characters")
		return
	}
	channel := req.Channel
	if channel == "" {
		channel = c.CurrentChannel
	}
	if channel == "" && len(c.Channels) > 0 {
		channel = c.Channels[len(c.Channels)-1]
	}
	if !channelRE.MatchString(channel) || channel == "desk" {
		fail(w, http.StatusBadRequest, "channel must be a channel name")
		return
	}
	if c.Status != "open" {
		fail(w, http.StatusConflict, "the conversation is "+c.Status+"; reopen it to reply")
		return
	}
	ctx := r.Context()
	p := principal(r)
	e, subject, err := a.sendText(ctx, c, channel, req.Text, p.AgentID)
	if errors.Is(err, store.ErrNoAddress) {
		fail(w, http.StatusConflict, fmt.Sprintf("the customer has no known address on %s (they never wrote on it and no CRM record gave one)", channel))
		return
	}
	if errors.Is(err, errPublish) {
		a.publishError(w, r, err)
		return
	}
	if err != nil {
		a.internal(w, r, err)
		return
	}
	if c.Assignee == "" && a.Assigner != nil { // replying claims an unassigned conversation
		if _, _, err := a.Assigner.Claim(ctx, c.ID, p.AgentID); err != nil && !errors.Is(err, store.ErrNotFound) {
			a.Log.Warn("reply sent; claiming the conversation failed", "conversation", c.ID, "agent", p.AgentID, "err", err)
		}
	}
	a.notify(ctx, "desk.reply", c.ID)
	webhook.WriteJSON(w, http.StatusAccepted, map[string]any{"message_id": e.ID(), "channel": channel, "subject": subject})
}

// errPublish wraps a failed publish of sendText's command.
var errPublish = errors.New("publish")

// sendText publishes the command that sends text to the customer of conversation c on channel,
// to the address the customer has there, and records it as a pending reply. agentID is the agent
// who sends it ("" for the desk itself). Errors wrap store.ErrNoAddress or errPublish.
func (a *API) sendText(ctx context.Context, c store.Conversation, channel, text, agentID string) (event.Event, string, error) {
	addr, err := a.Store.ReplyAddress(ctx, c.ID, channel)
	if err != nil {
		return event.Event{}, "", err
	}
	body := map[string]any{"type": "text", "text": text}
	data := map[string]any{"channel": channel, "to": map[string]string{"kind": addr.Kind, "value": addr.Value},
		"conversation_id": c.ID, "customer_id": c.CustomerID, "message": body}
	if agentID != "" {
		data["agent_id"] = agentID
	}
	if addr.Account != "" {
		data["account"] = addr.Account
	}
	e, err := event.New(TypeSendRequested, Source, data, event.WithSubject(c.ID), event.WithPartitionKey(addr.Kind+":"+addr.Value))
	if err != nil {
		return event.Event{}, "", err
	}
	subject := SubjectSend(channel)
	if err := a.Bus.Publish(ctx, subject, e); err != nil {
		return event.Event{}, "", fmt.Errorf("%w: %w", errPublish, err)
	}
	bj, _ := json.Marshal(body)
	if err := a.Store.AddPendingReply(ctx, e.ID(), c.ID, c.CustomerID, channel, agentID, a.Store.MaskedParty(ctx, c.ID, channel), bj, e.Time()); err != nil {
		a.Log.Warn("reply sent but not recorded as pending (the unifier's record will show it)", "id", e.ID(), "err", err)
	}
	return e, subject, nil
}

// SendCloseNotice tells the customer of an open conversation, on its current channel, that it is
// being closed (CloseNotice), when the desk has one to say and an address to say it to; the close
// goes on whatever happens here (the failure is logged).
func (a *API) SendCloseNotice(ctx context.Context, c store.Conversation) {
	if a.CloseNotice == "" || c.Status != "open" {
		return
	}
	channel := c.CurrentChannel
	if channel == "" && len(c.Channels) > 0 {
		channel = c.Channels[len(c.Channels)-1]
	}
	if !channelRE.MatchString(channel) || channel == "desk" {
		return
	}
	if _, _, err := a.sendText(ctx, c, channel, a.CloseNotice, ""); err != nil {
		a.Log.Warn("close notice not sent", "conversation", c.ID, "channel", channel, "err", err)
	}
}

var tokenRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// SchemaChecker says whether a CloudEvents type has a schema (bus.Client.Schemas()).
type SchemaChecker interface{ Has(ceType string) bool }

func (a *API) toolRequest(w http.ResponseWriter, r *http.Request) {
	c, ok := a.conversation(w, r)
	if !ok {
		return
	}
	tool, op := r.PathValue("tool"), r.PathValue("op")
	if !tokenRE.MatchString(tool) || !tokenRE.MatchString(op) {
		fail(w, http.StatusBadRequest, "tool and op must match ^[a-z][a-z0-9_]*$")
		return
	}
	typ := "omni.tool." + tool + "." + op + ".requested"
	var schemas SchemaChecker = schema.Default()
	if a.Schemas != nil {
		schemas = a.Schemas
	}
	if !schemas.Has(typ) {
		fail(w, http.StatusNotFound, "no such tool request: "+typ+" has no schema")
		return
	}
	data := map[string]any{}
	if !readJSON(w, r, &data) {
		return
	}
	ctx := r.Context()
	p := principal(r)
	data["conversation_id"], data["customer_id"], data["agent_id"] = c.ID, c.CustomerID, p.AgentID
	if tool == "ai" && op == "suggest" {
		if err := a.fillSuggestion(ctx, c, data); errors.Is(err, errNoTurns) { // suggest.go
			// The store has no text turn yet (the customer's first message is still being
			// projected, or it was not text): a moment later there will be one.
			w.Header().Set("Retry-After", "1")
			fail(w, http.StatusConflict, "the conversation has no text message on the desk yet; try again in a moment")
			return
		} else if err != nil {
			a.internal(w, r, err)
			return
		}
	}
	e, err := a.publishToolRequest(ctx, c, tool, op, p.AgentID, data) // suggest.go
	if err != nil {
		a.publishError(w, r, err)
		return
	}
	subject := typ
	webhook.WriteJSON(w, http.StatusAccepted, map[string]any{"request_id": e.ID(), "type": typ, "subject": subject})
}

// AssignRequest is the body of POST /api/conversations/{id}/assign.
type AssignRequest struct {
	AgentID string `json:"agent_id"`
	Note    string `json:"note,omitempty"`
}

func (a *API) assign(w http.ResponseWriter, r *http.Request) {
	c, ok := a.conversation(w, r)
	if !ok {
		return
	}
	var req AssignRequest
	if !readJSON(w, r, &req) {
		return
	}
	p := principal(r)
	if req.AgentID == "" {
		req.AgentID = p.AgentID // take it
	}
	if !p.HasRole(auth.RoleSupervisor) && c.Assignee != "" && c.Assignee != p.AgentID {
		fail(w, http.StatusForbidden, "only its assignee or a supervisor can transfer a conversation assigned to "+c.Assignee)
		return
	}
	ch, err := a.Assigner.Transfer(r.Context(), c.ID, req.AgentID, p.AgentID, req.Note)
	switch {
	case errors.Is(err, assign.ErrUnknownAgent):
		fail(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, assign.ErrNotOpen):
		fail(w, http.StatusConflict, err.Error())
	case errors.Is(err, schema.ErrInvalid):
		a.publishError(w, r, err)
	case err != nil:
		a.internal(w, r, err)
	default:
		webhook.WriteJSON(w, http.StatusOK, ch)
	}
}

// ReasonRequest is the body of close and reopen.
type ReasonRequest struct {
	Reason string `json:"reason,omitempty"`
}

func (a *API) close(w http.ResponseWriter, r *http.Request)  { a.command(w, r, TypeCloseRequested) }
func (a *API) reopen(w http.ResponseWriter, r *http.Request) { a.command(w, r, TypeReopenRequested) }

func (a *API) command(w http.ResponseWriter, r *http.Request, typ string) {
	c, ok := a.conversation(w, r)
	if !ok {
		return
	}
	var req ReasonRequest
	if !readJSON(w, r, &req) {
		return
	}
	if typ == TypeCloseRequested {
		a.SendCloseNotice(r.Context(), c)
	}
	data := map[string]any{"conversation_id": c.ID, "agent_id": principal(r).AgentID}
	if req.Reason = strings.TrimSpace(req.Reason); req.Reason != "" {
		data["reason"] = req.Reason
	}
	e, err := event.New(typ, Source, data, event.WithSubject(c.ID), event.WithPartitionKey(c.ID))
	if err != nil {
		a.internal(w, r, err)
		return
	}
	if err := a.Bus.Publish(r.Context(), SubjectConversation, e); err != nil {
		a.publishError(w, r, err)
		return
	}
	webhook.WriteJSON(w, http.StatusAccepted, map[string]any{"request_id": e.ID(), "type": typ, "subject": SubjectConversation})
}

func (a *API) customer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !uuidRE.MatchString(id) {
		fail(w, http.StatusBadRequest, "customer id must be a UUID")
		return
	}
	c, err := a.Store.Customer360(r.Context(), strings.ToLower(id))
	if err != nil {
		a.internal(w, r, err)
		return
	}
	webhook.WriteJSON(w, http.StatusOK, c)
}

func (a *API) agents(w http.ResponseWriter, r *http.Request) {
	list, err := a.Store.Agents(r.Context())
	if err != nil {
		a.internal(w, r, err)
		return
	}
	webhook.WriteJSON(w, http.StatusOK, map[string]any{"agents": list})
}

func (a *API) putAgent(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	id := r.PathValue("id")
	if !p.HasRole(auth.RoleSupervisor) && p.AgentID != id {
		fail(w, http.StatusForbidden, "agents can change only themselves; supervisors anyone")
		return
	}
	cur, err := a.Store.GetAgent(r.Context(), id)
	exists := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		a.internal(w, r, err)
		return
	}
	if !exists && !p.HasRole(auth.RoleSupervisor) {
		fail(w, http.StatusForbidden, "only supervisors create agents")
		return
	}
	ag := cur
	if !exists {
		ag = store.Agent{ID: id, Skills: []string{}, Languages: []string{}, Channels: []string{}, Capacity: 5, Active: true}
	}
	// Fields present in the body replace the current ones.
	var body struct {
		Name      *string   `json:"name"`
		Skills    *[]string `json:"skills"`
		Languages *[]string `json:"languages"`
		Channels  *[]string `json:"channels"`
		Capacity  *int      `json:"capacity"`
		Active    *bool     `json:"active"`
	}
	if !readJSON(w, r, &body) {
		return
	}
	if !p.HasRole(auth.RoleSupervisor) && (body.Capacity != nil || body.Skills != nil || body.Channels != nil) {
		fail(w, http.StatusForbidden, "only supervisors change skills, channels or capacity")
		return
	}
	set := func(dst *[]string, src *[]string) {
		if src != nil {
			*dst = *src
		}
	}
	if body.Name != nil {
		ag.Name = *body.Name
	}
	if ag.Name == "" {
		ag.Name = id
	}
	set(&ag.Skills, body.Skills)
	set(&ag.Languages, body.Languages)
	set(&ag.Channels, body.Channels)
	if body.Capacity != nil {
		ag.Capacity = *body.Capacity
	}
	if body.Active != nil {
		ag.Active = *body.Active
	}
	at := time.Now().UTC()
	e, err := event.New(TypeAgentUpdated, Source, store.AgentUpdated{Agent: ag, By: p.AgentID, At: at}, event.WithSubject(id))
	if err != nil {
		a.internal(w, r, err)
		return
	}
	if err := a.Bus.Publish(r.Context(), SubjectAgentUpdated, e); err != nil {
		a.publishError(w, r, err)
		return
	}
	if err := a.Store.ApplyAgent(r.Context(), ag, at); err != nil {
		a.internal(w, r, err)
		return
	}
	a.Hub.Publish(hub.Notice{Type: TypeAgentUpdated})
	a.Assigner.Kick()
	webhook.WriteJSON(w, http.StatusOK, ag)
}

func (a *API) alerts(w http.ResponseWriter, r *http.Request) {
	active := r.URL.Query().Get("active") != "false"
	p := principal(r)
	list, err := a.Store.VisibleAlerts(r.Context(), active, 50, p.AgentID, p.HasRole(auth.RoleSupervisor))
	if err != nil {
		a.internal(w, r, err)
		return
	}
	webhook.WriteJSON(w, http.StatusOK, map[string]any{"alerts": list})
}

func (a *API) opsRoutes(w http.ResponseWriter, r *http.Request) {
	window := time.Hour
	if s := r.URL.Query().Get("window"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < time.Minute || d > 7*24*time.Hour {
			fail(w, http.StatusBadRequest, "window must be a duration between 1m and 168h")
			return
		}
		window = d
	}
	step := max(window/60, 10*time.Second).Truncate(time.Second)
	stats, err := a.Store.RouteStats(r.Context(), time.Now().Add(-window), step)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	alerts, err := a.Store.Alerts(r.Context(), false, 20)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	disabled := []service.Disabled{}
	if a.Disabled != nil {
		disabled = append(disabled, a.Disabled()...)
	}
	canary, err := a.Store.CanaryRollouts(r.Context())
	if err != nil {
		a.internal(w, r, err)
		return
	}
	webhook.WriteJSON(w, http.StatusOK, map[string]any{"window": window.String(), "step": step.String(), "routes": stats, "alerts": alerts,
		"disabled": disabled, "canary": canary})
}
