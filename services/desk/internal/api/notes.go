package api

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/webhook"
	"github.com/omnibus-dev/omnibus/schemas"
	"github.com/omnibus-dev/omnibus/services/desk/internal/store"
)

// Private notes: for agents, on the conversation's timeline, never sent to the customer.
const (
	TypeNoteAdded    = schemas.TypeDeskNoteAdded
	SubjectNoteAdded = "omni.desk.note.added"
)

func (a *API) noteRoutes() []Route {
	return []Route{{"POST", "/api/conversations/{id}/notes", false, a.addNote}}
}

// NoteRequest is the body of POST /api/conversations/{id}/notes.
type NoteRequest struct {
	Text string `json:"text"`
}

// mentionRE finds @agent-id mentions (agent ids as the desk's schemas allow them, without a
// trailing dot or @ that belongs to the sentence).
var mentionRE = regexp.MustCompile(`(?:^|[^A-Za-z0-9._@-])@([A-Za-z0-9][A-Za-z0-9._@-]{0,127})`)

// mentions returns the known agents text @mentions, in order, once each.
func mentions(text string, known func(string) bool) []string {
	out := []string{}
	for _, m := range mentionRE.FindAllStringSubmatch(text, 32) {
		id := strings.TrimRight(m[1], ".@-")
		if known(id) && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// addNote publishes an agent's note; the desk's projection stores it and tells the agents it
// mentions (their open pages get a desk.mention notice).
func (a *API) addNote(w http.ResponseWriter, r *http.Request) {
	c, ok := a.conversation(w, r)
	if !ok {
		return
	}
	var req NoteRequest
	if !readJSON(w, r, &req) {
		return
	}
	text := strings.TrimSpace(req.Text)
	if text == "" || utf8.RuneCountInString(text) > 4000 {
		fail(w, http.StatusBadRequest, "text must be 1-4000 characters")
		return
	}
	agents, err := a.Store.Agents(r.Context())
	if err != nil {
		a.internal(w, r, err)
		return
	}
	known := func(id string) bool {
		return slices.ContainsFunc(agents, func(ag store.AgentLoad) bool { return ag.ID == id })
	}
	n := store.Note{NoteID: uuid.NewString(), ConversationID: c.ID, Author: principal(r).AgentID, Text: text,
		Mentions: mentions(text, known), At: time.Now().UTC()}
	e, err := event.New(TypeNoteAdded, Source, n, event.WithSubject(c.ID))
	if err != nil {
		a.internal(w, r, err)
		return
	}
	if err := a.Bus.Publish(r.Context(), SubjectNoteAdded, e); err != nil {
		a.publishError(w, r, err)
		return
	}
	webhook.WriteJSON(w, http.StatusAccepted, n)
}
