package api

import (
	"net/http"
	"strings"

	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/webhook"
	"github.com/omnibus-dev/omnibus/schemas"
	"github.com/omnibus-dev/omnibus/services/desk/auth"
)

// Call control commands: the desk asks the voice connector, which holds the call, to act on it.
// Each command carries the agent who asked (its audit) and the conversation the call is on.
const (
	TypeCallHangup     = schemas.TypeChannelCallHangupRequested
	TypeCallTransfer   = schemas.TypeChannelCallTransferRequested
	SubjectCallHangup  = "omni.out.voice.call.hangup"
	SubjectCallTrans   = "omni.out.voice.call.transfer"
	callCommandChannel = "voice" // the only channel with calls
)

// CallCommandRequest is the body of POST /api/calls/{call}/hangup and /transfer.
type CallCommandRequest struct {
	// Target is the transfer's agent extension or SIP URI (transfer only).
	Target string `json:"target,omitempty"`
	Reason string `json:"reason,omitempty"`
}

func (a *API) callRoutes() []Route {
	return []Route{
		{"POST", "/api/calls/{call}/hangup", false, a.hangupCall},
		{"POST", "/api/calls/{call}/transfer", false, a.transferCall},
	}
}

func (a *API) hangupCall(w http.ResponseWriter, r *http.Request) {
	a.callCommand(w, r, TypeCallHangup, SubjectCallHangup)
}

func (a *API) transferCall(w http.ResponseWriter, r *http.Request) {
	a.callCommand(w, r, TypeCallTransfer, SubjectCallTrans)
}

// callCommand publishes a call control command for the call in the path: 404 for a call the desk
// never saw, 403 unless the principal is the conversation's assignee or a supervisor, 409 for a
// call that is over (or, for a transfer, not answered yet); the command's schema decides the rest
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
	if typ == TypeCallTransfer {
		if call.State != "answered" {
			fail(w, http.StatusConflict, "the call is not answered yet; a transfer needs an answered call")
			return
		}
		data["target"] = strings.TrimSpace(req.Target)
	} else if req.Target != "" {
		fail(w, http.StatusBadRequest, "target is for transfers")
		return
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
