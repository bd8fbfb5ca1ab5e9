package api

import (
	"net/http"
	"strings"

	"github.com/omnibus-dev/omnibus/pkg/auth"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/webhook"
	"github.com/omnibus-dev/omnibus/schemas"
)

// Call control commands: the desk asks the voice connector, which holds the call, to act on it.
// Each command carries the agent who asked (its audit) and the conversation the call is on.
const (
	TypeCallHangup     = schemas.TypeChannelCallHangupRequested
	TypeCallTransfer   = schemas.TypeChannelCallTransferRequested
	TypeCallPrompt     = schemas.TypeChannelCallPromptRequested
	SubjectCallHangup  = "omni.out.voice.call.hangup"
	SubjectCallTrans   = "omni.out.voice.call.transfer"
	SubjectCallPrompt  = "omni.out.voice.call.prompt"
	callCommandChannel = "voice" // the only channel with calls
)

// CallCommandRequest is the body of POST /api/calls/{call}/hangup, /transfer and /prompt.
type CallCommandRequest struct {
	// Target is the transfer's agent extension or SIP URI (transfer only).
	Target string `json:"target,omitempty"`
	// Text is what the prompt says (prompt only).
	Text   string `json:"text,omitempty"`
	Reason string `json:"reason,omitempty"`
}

func (a *API) callRoutes() []Route {
	return []Route{
		{"POST", "/api/calls/{call}/hangup", false, a.hangupCall},
		{"POST", "/api/calls/{call}/transfer", false, a.transferCall},
		{"POST", "/api/calls/{call}/prompt", false, a.promptCall},
	}
}

func (a *API) hangupCall(w http.ResponseWriter, r *http.Request) {
	a.callCommand(w, r, TypeCallHangup, SubjectCallHangup)
}

func (a *API) transferCall(w http.ResponseWriter, r *http.Request) {
	a.callCommand(w, r, TypeCallTransfer, SubjectCallTrans)
}

func (a *API) promptCall(w http.ResponseWriter, r *http.Request) {
	a.callCommand(w, r, TypeCallPrompt, SubjectCallPrompt)
}

// callCommand publishes a call control command for the call in the path: 404 for a call the desk
// never saw, 403 unless the principal is the conversation's assignee or a supervisor, 409 for a
// call that is over (or, for a transfer or a prompt, not answered yet); the command's schema decides the rest
// (400 with its reason).
func (a *API) callCommand(w http.ResponseWriter, r *http.Request, typ, subject string) {
	id := strings.ToLower(r.PathValue("call"))
	if !uuidRE.MatchString(id) {
		fail(w, http.StatusBadRequest, "call id must be a UUID")
		return
	}
	var req CallCommandRequest
	if !readJSON(w, r, &req) {
		return
	}
	ctx := r.Context()
	call, err := a.Store.GetCall(ctx, id)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	conv, err := a.Store.GetConversation(ctx, call.ConversationID)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	p := principal(r)
	if !p.HasRole(auth.RoleSupervisor) && (conv.Assignee == "" || conv.Assignee != p.AgentID) {
		fail(w, http.StatusForbidden, "only the conversation's assignee or a supervisor controls its calls")
		return
	}
	if !call.Live() {
		fail(w, http.StatusConflict, "the call is "+call.State)
		return
	}
	data := map[string]any{"channel": callCommandChannel, "call_id": id, "agent_id": p.AgentID, "conversation_id": conv.ID}
	if typ != TypeCallHangup && call.State != "answered" {
		fail(w, http.StatusConflict, "the call is not answered yet")
		return
	}
	switch {
	case (req.Target != "") != (typ == TypeCallTransfer):
		fail(w, http.StatusBadRequest, "target is for transfers, and required there")
		return
	case (req.Text != "") != (typ == TypeCallPrompt):
		fail(w, http.StatusBadRequest, "text is for prompts, and required there")
		return
	case req.Reason != "" && typ == TypeCallPrompt:
		fail(w, http.StatusBadRequest, "a prompt has no reason")
		return
	}
	if typ == TypeCallTransfer {
		data["target"] = strings.TrimSpace(req.Target)
	}
	if typ == TypeCallPrompt {
		data["text"] = req.Text
	}
	if req.Reason = strings.TrimSpace(req.Reason); req.Reason != "" {
		data["reason"] = req.Reason
	}
	e, err := event.New(typ, Source, data, event.WithSubject(id), event.WithPartitionKey(id))
	if err != nil {
		a.internal(w, r, err)
		return
	}
	if err := a.Bus.Publish(ctx, subject, e); err != nil {
		a.publishError(w, r, err)
		return
	}
	a.Log.Info("call command", "type", typ, "call_id", id, "agent_id", p.AgentID, "conversation_id", conv.ID, "request_id", e.ID())
	webhook.WriteJSON(w, http.StatusAccepted, map[string]any{"request_id": e.ID(), "type": typ, "subject": subject})
}
