package ticket

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/resilience"
	"github.com/omnibus-dev/omnibus/pkg/wire/jira"
	"github.com/omnibus-dev/omnibus/pkg/wire/zendesk"
)

// Tags that tie a ticket to its conversation: a Jira label, a Zendesk external_id.
const (
	LabelPrefix      = "omnibus-conv-"
	ExternalIDPrefix = "omnibus:conversation:"
)

// ref is a ticket as the events name it.
type ref struct {
	ID     string // Jira issue key, Zendesk ticket id
	URL    string // where an agent opens it
	Status string
}

// newTicket is what a create sends.
type newTicket struct {
	Subject, Description, Priority string
	RequesterName, RequesterEmail  string
	Tags                           []string
}

// provider is one ticketing system. Find is idempotent (retried by the pipeline); Create and
// Comment are not (never retried once the request may have reached the vendor). call names the
// customer and request for the audit records.
type provider interface {
	Name() string
	Find(ctx context.Context, conversation string, call resilience.Call) (ref, bool, error)
	Create(ctx context.Context, conversation string, t newTicket, call resilience.Call) (ref, error)
	Comment(ctx context.Context, ticketID, body string, public bool, call resilience.Call) (string, error)
	// NewTicketURL and TicketURL are the manual fallbacks.
	NewTicketURL() string
	TicketURL(id string) string
}

// errAmbiguous marks a create or comment whose outcome is unknown: it may have reached the vendor.
var errAmbiguous = errors.New("outcome unknown: the request may have reached the vendor")

// jsonBody encodes a request body.
func jsonBody(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, resilience.Permanent(err)
	}
	return b, nil
}

// --- Jira ---

type jiraProvider struct {
	cfg    Config
	client *http.Client
	routes routes
	auth   string
}

func (p *jiraProvider) Name() string { return ProviderJira }

func (p *jiraProvider) NewTicketURL() string {
	return p.cfg.JiraBaseURL + "/secure/CreateIssue!default.jspa"
}
func (p *jiraProvider) TicketURL(id string) string {
	return p.cfg.JiraBaseURL + "/browse/" + url.PathEscape(id)
}

func jiraErr(status int, body []byte, _ time.Duration) error { return jira.DecodeError(status, body) }

func (p *jiraProvider) do(ctx context.Context, rt *resilience.Route, c resilience.Call, method, path string, body any, parse func([]byte) error) error {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = jsonBody(body); err != nil {
			return err
		}
	}
	return send(ctx, rt, c, p.client, request{method: method, url: p.cfg.JiraBaseURL + path, auth: p.auth, body: raw, vendorErr: jiraErr, parse: parse})
}

func (p *jiraProvider) Find(ctx context.Context, conv string, c resilience.Call) (ref, bool, error) {
	q := jira.SearchRequest{JQL: "project = " + jira.JQLString(p.cfg.JiraProjectKey) + " AND labels = " + jira.JQLString(jira.LabelValue(LabelPrefix, conv)),
		Fields: []string{"status", "labels"}, MaxResults: 2}
	var res jira.SearchResult
	err := p.do(ctx, p.routes.search, c, http.MethodPost, jira.PathSearch, q, func(b []byte) (err error) {
		res, err = jira.ParseSearch(b)
		return err
	})
	if err != nil || len(res.Issues) == 0 {
		return ref{}, false, err
	}
	is := res.Issues[0] // the oldest match would be better, but search orders by key desc by default; both are ours
	for _, c := range res.Issues[1:] {
		if keyNumber(c.Key) < keyNumber(is.Key) {
			is = c
		}
	}
	r := ref{ID: is.Key, URL: p.TicketURL(is.Key)}
	if is.Fields.Status != nil {
		r.Status = is.Fields.Status.Name
	}
	return r, true, nil
}

func keyNumber(key string) int {
	_, n, _ := strings.Cut(key, "-")
	v, _ := strconv.Atoi(n)
	return v
}

func (p *jiraProvider) Create(ctx context.Context, conv string, t newTicket, call resilience.Call) (ref, error) {
	desc := jira.Paragraphs(t.Description)
	f := jira.IssueFields{Project: jira.Ref{Key: p.cfg.JiraProjectKey}, IssueType: jira.Ref{Name: p.cfg.JiraIssueType},
		Summary: t.Subject, Labels: append([]string{"omnibus", jira.LabelValue(LabelPrefix, conv)}, t.Tags...)}
	if len(desc.Content) > 0 {
		f.Description = &desc
	}
	if prio := map[string]string{"urgent": "Highest", "high": "High", "normal": "Medium", "low": "Low"}[t.Priority]; prio != "" {
		f.Priority = &jira.Ref{Name: prio}
	}
	var c jira.CreatedIssue
	err := p.do(ctx, p.routes.create, call, http.MethodPost, jira.PathIssue, jira.CreateIssueRequest{Fields: f}, func(b []byte) (err error) {
		c, err = jira.ParseCreated(b)
		return err
	})
	if err != nil {
		return ref{}, err
	}
	return ref{ID: c.Key, URL: p.TicketURL(c.Key), Status: "To Do"}, nil
}

func (p *jiraProvider) Comment(ctx context.Context, id, body string, _ bool, call resilience.Call) (string, error) {
	call.Key = id
	var c jira.Comment
	err := p.do(ctx, p.routes.comment, call, http.MethodPost, jira.PathIssueKey+url.PathEscape(id)+"/comment",
		jira.AddCommentRequest{Body: jira.Paragraphs(body)}, func(b []byte) (err error) {
			c, err = jira.ParseComment(b)
			return err
		})
	return c.ID, err
}

// --- Zendesk ---

type zendeskProvider struct {
	cfg    Config
	client *http.Client
	routes routes
	auth   string
}

func (p *zendeskProvider) Name() string { return ProviderZendesk }

func (p *zendeskProvider) agentBase() string {
	if p.cfg.ZendeskSubdomain != "" {
		return "https://" + p.cfg.ZendeskSubdomain + ".zendesk.com"
	}
	return p.cfg.ZendeskAPIBase
}
func (p *zendeskProvider) NewTicketURL() string { return p.agentBase() + "/agent/tickets/new/1" }
func (p *zendeskProvider) TicketURL(id string) string {
	return p.agentBase() + "/agent/tickets/" + url.PathEscape(id)
}

func zendeskErr(status int, body []byte, ra time.Duration) error {
	e := zendesk.DecodeError(status, body, "")
	e.RetryAfter = ra
	return e
}

func (p *zendeskProvider) do(ctx context.Context, rt *resilience.Route, c resilience.Call, method, path string, body any, parse func([]byte) error) error {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = jsonBody(body); err != nil {
			return err
		}
	}
	return send(ctx, rt, c, p.client, request{method: method, url: p.cfg.ZendeskAPIBase + path, auth: p.auth, body: raw, vendorErr: zendeskErr, parse: parse})
}

func (p *zendeskProvider) Find(ctx context.Context, conv string, c resilience.Call) (ref, bool, error) {
	var res zendesk.ListResponse
	err := p.do(ctx, p.routes.search, c, http.MethodGet, zendesk.PathTickets+"?external_id="+url.QueryEscape(ExternalIDPrefix+conv), nil,
		func(b []byte) (err error) {
			res, err = zendesk.ParseList(b)
			return err
		})
	if err != nil || len(res.Tickets) == 0 {
		return ref{}, false, err
	}
	t := res.Tickets[0]
	for _, c := range res.Tickets[1:] {
		if c.ID < t.ID {
			t = c // the oldest is the conversation's ticket
		}
	}
	id := strconv.FormatInt(t.ID, 10)
	return ref{ID: id, URL: p.TicketURL(id), Status: t.Status}, true, nil
}

func (p *zendeskProvider) Create(ctx context.Context, conv string, t newTicket, call resilience.Call) (ref, error) {
	public := false
	body := t.Description
	if strings.TrimSpace(body) == "" {
		body = t.Subject
	}
	nt := zendesk.NewTicket{Subject: t.Subject, Comment: zendesk.Comment{Body: body, Public: &public}, Priority: t.Priority,
		Tags: append([]string{"omnibus"}, t.Tags...), ExternalID: ExternalIDPrefix + conv}
	if t.RequesterEmail != "" {
		nt.Requester = &zendesk.Requester{Name: t.RequesterName, Email: t.RequesterEmail}
	}
	var res zendesk.TicketResponse
	err := p.do(ctx, p.routes.create, call, http.MethodPost, zendesk.PathTickets, zendesk.CreateRequest{Ticket: nt}, func(b []byte) (err error) {
		res, err = zendesk.ParseTicket(b)
		return err
	})
	if err != nil {
		return ref{}, err
	}
	id := strconv.FormatInt(res.Ticket.ID, 10)
	return ref{ID: id, URL: p.TicketURL(id), Status: res.Ticket.Status}, nil
}

func (p *zendeskProvider) Comment(ctx context.Context, id, body string, public bool, call resilience.Call) (string, error) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return "", resilience.Permanent(fmt.Errorf("zendesk ticket id %q is not a number", id))
	}
	call.Key = id
	var res zendesk.TicketResponse
	err = p.do(ctx, p.routes.comment, call, http.MethodPut, zendesk.TicketPath(n),
		zendesk.UpdateRequest{Ticket: zendesk.TicketUpdate{Comment: &zendesk.Comment{Body: body, Public: &public}}}, func(b []byte) (err error) {
			res, err = zendesk.ParseTicket(b)
			return err
		})
	if err != nil {
		return "", err
	}
	if res.Audit != nil {
		return strconv.FormatInt(res.Audit.ID, 10), nil
	}
	return "", nil
}
