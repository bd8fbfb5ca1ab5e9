package ticket

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/webhook"
	"github.com/omnibus-dev/omnibus/pkg/wire/jira"
	"github.com/omnibus-dev/omnibus/pkg/wire/zendesk"
)

// statusChanged is the data of omni.tool.ticket.status.changed.
type statusChanged struct {
	ConversationID string    `json:"conversation_id,omitempty"`
	Provider       string    `json:"provider"`
	TicketID       string    `json:"ticket_id"`
	Status         string    `json:"status"`
	PreviousStatus string    `json:"previous_status,omitempty"`
	State          string    `json:"state"`
	ChangedAt      time.Time `json:"changed_at"`
	URL            string    `json:"url,omitempty"`
}

// mountWebhooks mounts POST /hooks/ticket/jira and /hooks/ticket/zendesk. A webhook whose secret
// is not configured refuses every call (401): status sync needs the vendor's signature.
func (c *Connector) mountWebhooks() error {
	if err := c.rt.Webhook(connector.Webhook{Path: "/jira", MaxBody: 1 << 20, Verify: c.verifyJira, Decode: c.decodeJira}); err != nil {
		return err
	}
	return c.rt.Webhook(connector.Webhook{Path: "/zendesk", MaxBody: 1 << 20, Verify: c.verifyZendesk, Decode: c.decodeZendesk})
}

func (c *Connector) verifyJira(r *http.Request, body []byte) error {
	if c.cfg.JiraWebhookSecret == "" {
		return fmt.Errorf("%w: JIRA_WEBHOOK_SECRET is not configured", webhook.ErrSignature)
	}
	sig := r.Header.Get(jira.HeaderSignature)
	if sig == "" {
		return fmt.Errorf("%w: no %s header", webhook.ErrSignature, jira.HeaderSignature)
	}
	if !jira.VerifyWebhook(c.cfg.JiraWebhookSecret, body, sig) {
		return fmt.Errorf("%w: %s does not match the body", webhook.ErrSignature, jira.HeaderSignature)
	}
	return nil
}

func (c *Connector) decodeJira(r *http.Request, body []byte) ([]bus.Outgoing, error) {
	w, err := jira.ParseWebhook(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", webhook.ErrMalformed, err)
	}
	from, to, ok := w.StatusChange()
	if !ok || to == "" {
		return nil, nil // not a status change: acknowledged, nothing to publish
	}
	category := ""
	if st := w.Issue.Fields.Status; st != nil && st.Name == to && st.StatusCategory != nil {
		category = st.StatusCategory.Key
	}
	conv := ""
	for _, l := range w.Issue.Fields.Labels {
		if v, ok := strings.CutPrefix(l, LabelPrefix); ok && uuid.Validate(v) == nil {
			conv = v
		}
	}
	id := r.Header.Get(jira.HeaderIdentifier)
	if id == "" {
		id = w.Issue.ID + ":" + changelogID(w)
	}
	data := statusChanged{ConversationID: conv, Provider: ProviderJira, TicketID: w.Issue.Key, Status: capRunes(to, 64),
		State: jiraState(category, to), ChangedAt: time.UnixMilli(w.Timestamp).UTC(), URL: c.jiraURL(w.Issue.Key)}
	if from != "" {
		data.PreviousStatus = capRunes(from, 64)
	}
	return c.statusEvent("ticket:jira:"+id, data)
}

func changelogID(w jira.WebhookEvent) string {
	if w.Changelog != nil && w.Changelog.ID != "" {
		return w.Changelog.ID
	}
	return fmt.Sprint(w.Timestamp)
}

func (c *Connector) jiraURL(key string) string {
	if c.cfg.JiraBaseURL == "" {
		return ""
	}
	return c.cfg.JiraBaseURL + "/browse/" + key
}

// jiraState maps a status category (new, indeterminate, done), or the status name when the
// webhook carried no category.
func jiraState(category, name string) string {
	switch category {
	case "new":
		return "new"
	case "indeterminate":
		return "open"
	case "done":
		return "solved"
	}
	switch strings.ToLower(name) {
	case "to do", "open", "backlog", "new":
		return "new"
	case "done", "resolved":
		return "solved"
	case "closed":
		return "closed"
	case "waiting for customer", "pending":
		return "pending"
	}
	return "open"
}

func (c *Connector) verifyZendesk(r *http.Request, body []byte) error {
	if c.cfg.ZendeskWebhookSecret == "" {
		return fmt.Errorf("%w: ZENDESK_WEBHOOK_SECRET is not configured", webhook.ErrSignature)
	}
	ts, sig := r.Header.Get(zendesk.HeaderTimestamp), r.Header.Get(zendesk.HeaderSignature)
	if ts == "" || sig == "" {
		return fmt.Errorf("%w: %s and %s are required", webhook.ErrSignature, zendesk.HeaderSignature, zendesk.HeaderTimestamp)
	}
	at, err := zendesk.ParseWebhookTimestamp(ts)
	if err != nil {
		return fmt.Errorf("%w: %w", webhook.ErrMalformed, err)
	}
	if d := time.Since(at); d > c.cfg.WebhookWindow || d < -c.cfg.WebhookWindow {
		return fmt.Errorf("%w: timestamp %s is %s from now (window %s)", webhook.ErrExpired, ts, d.Round(time.Second), c.cfg.WebhookWindow)
	}
	if !zendesk.VerifyWebhook(c.cfg.ZendeskWebhookSecret, ts, body, sig) {
		return fmt.Errorf("%w: %s does not match timestamp+body", webhook.ErrSignature, zendesk.HeaderSignature)
	}
	return nil
}

func (c *Connector) decodeZendesk(_ *http.Request, body []byte) ([]bus.Outgoing, error) {
	w, err := zendesk.ParseWebhook(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", webhook.ErrMalformed, err)
	}
	if w.Type != zendesk.EventTicketStatusChanged || w.Event.Current == "" {
		return nil, nil
	}
	conv := ""
	if w.Detail.ExternalID != nil {
		if v, ok := strings.CutPrefix(*w.Detail.ExternalID, ExternalIDPrefix); ok && uuid.Validate(v) == nil {
			conv = v
		}
	}
	at := w.Time
	if at.IsZero() {
		at = time.Now()
	}
	cur := strings.ToLower(w.Event.Current)
	data := statusChanged{ConversationID: conv, Provider: ProviderZendesk, TicketID: w.Detail.ID, Status: capRunes(cur, 64),
		State: zendeskState(cur), ChangedAt: at.UTC()}
	if c.cfg.ZendeskAPIBase != "" {
		data.URL = (&zendeskProvider{cfg: c.cfg}).TicketURL(w.Detail.ID)
	}
	if w.Event.Previous != "" {
		data.PreviousStatus = capRunes(strings.ToLower(w.Event.Previous), 64)
	}
	return c.statusEvent("ticket:zendesk:"+w.ID, data)
}

func zendeskState(s string) string {
	switch s {
	case "new", "open", "pending", "solved", "closed":
		return s
	case "hold":
		return "on_hold"
	}
	return "open"
}

func (c *Connector) statusEvent(id string, data statusChanged) ([]bus.Outgoing, error) {
	opts := []event.Option{event.WithID(capRunes(id, 1000))}
	if data.ConversationID != "" {
		opts = append(opts, event.WithSubject(data.ConversationID))
	}
	e, err := c.rt.NewEvent(TypeStatusChanged, data, opts...)
	if err != nil {
		return nil, err
	}
	return []bus.Outgoing{{Subject: TypeStatusChanged, Event: e}}, nil
}
