package api

import (
	"net/http"

	"github.com/omnibus-dev/omnibus/pkg/auth"
	"github.com/omnibus-dev/omnibus/services/desk/internal/store"
)

// sentiment returns what a timeline shows of the sentiment connector: the mark of each scored
// message (by message id) and the conversation's open "customer turned negative" alert, which
// only its assigned agent and supervisors see (nil for others).
func (a *API) sentiment(r *http.Request, c store.Conversation) (map[string]store.SentimentMark, *store.Alert, error) {
	marks, err := a.Store.SentimentMarks(r.Context(), c.ID)
	if err != nil {
		return nil, nil, err
	}
	p := principal(r)
	if !p.HasRole(auth.RoleSupervisor) && (c.Assignee == "" || c.Assignee != p.AgentID) {
		return marks, nil, nil
	}
	alert, err := a.Store.OpenSentimentAlert(r.Context(), c.ID)
	return marks, alert, err
}
