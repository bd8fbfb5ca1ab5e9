package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/omnibus-dev/omnibus/pkg/auth"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/webhook"
	"github.com/omnibus-dev/omnibus/schemas"
	"github.com/omnibus-dev/omnibus/services/desk/internal/store"
)

// Canned responses: texts agents insert by shortcut, shared (supervisors write them) or their own.
const (
	TypeCannedSaved      = schemas.TypeDeskCannedSaved
	TypeCannedDeleted    = schemas.TypeDeskCannedDeleted
	SubjectCannedSaved   = "omni.desk.canned.saved"
	SubjectCannedDeleted = "omni.desk.canned.deleted"
)

func (a *API) cannedRoutes() []Route {
	return []Route{
		{"GET", "/api/canned", false, a.listCanned},
		{"POST", "/api/canned", false, a.createCanned},
		{"PUT", "/api/canned/{cid}", false, a.updateCanned},
		{"DELETE", "/api/canned/{cid}", false, a.deleteCanned},
		{"GET", "/api/conversations/{id}/canned", false, a.cannedForConversation},
	}
}

// CannedRequest is the body of POST /api/canned and PUT /api/canned/{cid}.
type CannedRequest struct {
	Shortcut string `json:"shortcut"`
	Title    string `json:"title"`
	Text     string `json:"text"`
	Shared   bool   `json:"shared"` // POST only: for every agent (supervisors)
}

// CannedItem is a canned response as the API serves it; on a conversation, Rendered is its text
// with the variables filled in and Missing the variables the desk knows no value for.
type CannedItem struct {
	store.Canned
	Shared   bool     `json:"shared"`
	Rendered string   `json:"rendered,omitempty"`
	Missing  []string `json:"missing,omitempty"`
}

var shortcutRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// variableRE finds {{ name }} in a canned text.
var variableRE = regexp.MustCompile(`\{\{\s*([a-z_.]+)\s*\}\}`)

// cannedVariables are the variables a canned text may use.
var cannedVariables = []string{"customer.name", "agent.name", "order.number"}

func (req *CannedRequest) check() string {
	req.Shortcut, req.Title, req.Text = strings.ToLower(strings.TrimSpace(req.Shortcut)), strings.TrimSpace(req.Title), strings.TrimSpace(req.Text)
	switch {
	case !shortcutRE.MatchString(req.Shortcut):
		return "shortcut must be 1-32 of a-z, 0-9, _ and -, starting with a letter or digit"
	case req.Title == "" || utf8.RuneCountInString(req.Title) > 120:
		return "title must be 1-120 characters"
	case req.Text == "" || utf8.RuneCountInString(req.Text) > 4000:
		return "text must be 1-4000 characters"
	}
	for _, m := range variableRE.FindAllStringSubmatch(req.Text, -1) {
		if !slices.Contains(cannedVariables, m[1]) {
			return "unknown variable {{" + m[1] + "}}: use " + strings.Join(cannedVariables, ", ")
		}
	}
	return ""
}

func item(c store.Canned) CannedItem { return CannedItem{Canned: c, Shared: c.Owner == ""} }

func (a *API) listCanned(w http.ResponseWriter, r *http.Request) {
	list, err := a.Store.CannedFor(r.Context(), principal(r).AgentID)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	out := make([]CannedItem, len(list))
	for i, c := range list {
		out[i] = item(c)
	}
	webhook.WriteJSON(w, http.StatusOK, map[string]any{"canned": out, "variables": cannedVariables})
}

// cannedForConversation lists the agent's canned responses rendered for the conversation.
func (a *API) cannedForConversation(w http.ResponseWriter, r *http.Request) {
	c, ok := a.conversation(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	p := principal(r)
	list, err := a.Store.CannedFor(ctx, p.AgentID)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	values := map[string]string{"customer.name": c.CustomerName}
	if ag, err := a.Store.GetAgent(ctx, p.AgentID); err == nil {
		values["agent.name"] = ag.Name
	}
	if cu, err := a.Store.Customer360(ctx, c.CustomerID); err == nil && len(cu.Orders) > 0 {
		var orders []struct {
			OrderNo string `json:"order_no"`
		}
		if json.Unmarshal(cu.Orders, &orders) == nil && len(orders) > 0 {
			values["order.number"] = orders[0].OrderNo
		}
	}
	out := make([]CannedItem, len(list))
	for i, cn := range list {
		it := item(cn)
		it.Rendered = variableRE.ReplaceAllStringFunc(cn.Text, func(m string) string {
			name := variableRE.FindStringSubmatch(m)[1]
			v := values[name]
			if v == "" && !slices.Contains(it.Missing, name) {
				it.Missing = append(it.Missing, name)
			}
			return v
		})
		out[i] = it
	}
	webhook.WriteJSON(w, http.StatusOK, map[string]any{"canned": out})
}

func (a *API) createCanned(w http.ResponseWriter, r *http.Request) {
	var req CannedRequest
	if !readJSON(w, r, &req) {
		return
	}
	if reason := req.check(); reason != "" {
		fail(w, http.StatusBadRequest, reason)
		return
	}
	p := principal(r)
	owner := p.AgentID
	if req.Shared {
		if !p.HasRole(auth.RoleSupervisor) {
			fail(w, http.StatusForbidden, "only supervisors write shared canned responses")
			return
		}
		owner = ""
	}
	a.saveCanned(w, r, store.Canned{CannedID: uuid.NewString(), Owner: owner, Shortcut: req.Shortcut, Title: req.Title, Text: req.Text})
}

func (a *API) updateCanned(w http.ResponseWriter, r *http.Request) {
	cur, ok := a.ownCanned(w, r)
	if !ok {
		return
	}
	var req CannedRequest
	if !readJSON(w, r, &req) {
		return
	}
	if reason := req.check(); reason != "" {
		fail(w, http.StatusBadRequest, reason)
		return
	}
	cur.Shortcut, cur.Title, cur.Text = req.Shortcut, req.Title, req.Text
	a.saveCanned(w, r, cur)
}

func (a *API) deleteCanned(w http.ResponseWriter, r *http.Request) {
	cur, ok := a.ownCanned(w, r)
	if !ok {
		return
	}
	d := store.CannedDeleted{CannedID: cur.CannedID, By: principal(r).AgentID, At: time.Now().UTC()}
	e, err := event.New(TypeCannedDeleted, Source, d, event.WithSubject(cur.CannedID))
	if err != nil {
		a.internal(w, r, err)
		return
	}
	if err := a.Bus.Publish(r.Context(), SubjectCannedDeleted, e); err != nil {
		a.publishError(w, r, err)
		return
	}
	if err := a.Store.ApplyCannedDeleted(r.Context(), d); err != nil {
		a.internal(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ownCanned loads the canned response of the path for a change: an agent's own, or a shared one
// for a supervisor.
func (a *API) ownCanned(w http.ResponseWriter, r *http.Request) (store.Canned, bool) {
	id := r.PathValue("cid")
	if !uuidRE.MatchString(id) {
		fail(w, http.StatusBadRequest, "canned response id must be a UUID")
		return store.Canned{}, false
	}
	c, err := a.Store.GetCanned(r.Context(), strings.ToLower(id))
	if err != nil {
		a.internal(w, r, err)
		return c, false
	}
	p := principal(r)
	if (c.Owner == "" && !p.HasRole(auth.RoleSupervisor)) || (c.Owner != "" && c.Owner != p.AgentID) {
		fail(w, http.StatusForbidden, "an agent changes its own canned responses; supervisors the shared ones")
		return c, false
	}
	return c, true
}

// saveCanned publishes c and applies it at once (the projection applies it again, idempotently),
// so the agent's next list has it.
func (a *API) saveCanned(w http.ResponseWriter, r *http.Request, c store.Canned) {
	ctx := r.Context()
	taken, err := a.Store.CannedShortcutOwner(ctx, c.Owner, c.Shortcut)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	if taken != "" && taken != c.CannedID {
		fail(w, http.StatusConflict, "shortcut /"+c.Shortcut+" is taken")
		return
	}
	c.By, c.At = principal(r).AgentID, time.Now().UTC()
	e, err := event.New(TypeCannedSaved, Source, c, event.WithSubject(c.CannedID))
	if err != nil {
		a.internal(w, r, err)
		return
	}
	if err := a.Bus.Publish(ctx, SubjectCannedSaved, e); err != nil {
		a.publishError(w, r, err)
		return
	}
	if err := a.Store.ApplyCanned(ctx, c); err != nil && !errors.Is(err, store.ErrShortcutTaken) {
		a.internal(w, r, err)
		return
	}
	webhook.WriteJSON(w, http.StatusAccepted, item(c))
}
