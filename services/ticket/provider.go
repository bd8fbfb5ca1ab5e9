package ticket

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
	"github.com/omnibus-dev/omnibus/pkg/wire/jira"
	"github.com/omnibus-dev/omnibus/pkg/wire/zendesk"
)

// Tags that tie a ticket to its conversation: a Jira label, a Zendesk external_id and the
// Idempotency-Key of the Zendesk create (ExternalIDPrefix + conversation, hashed when too long).
const (
	LabelPrefix      = "omnibus-conv-"
	ExternalIDPrefix = "omnibus:conversation:"
)

// ref is a ticket as the events name it.
type ref struct {
	ID     string // Jira issue key, Zendesk ticket id
	URL    string // where an agent opens it
	Status string
	// existing: a create answered with a ticket that an earlier request made (a Zendesk
	// idempotency hit for a request written once).
	existing bool
}

// newTicket is what a create sends.
type newTicket struct {
	Subject, Description, Priority string
	RequesterName, RequesterEmail  string
	Tags                           []string
	// Department is the Jira component or Zendesk group the ticket goes to ("" for none).
	Department string
}

// provider is one ticketing system. Find is idempotent (retried by the pipeline) and answers the
// conversation's oldest ticket when there are several. Create is retried by the pipeline only when
// KeyedCreate (the vendor dedupes it by an idempotency key); otherwise it is sent once per call
// and the connector sends it again only after a search found nothing. It returns an error wrapping
// errKeyConflict when the vendor refused the key (used by another create with other parameters).
// Comment is never retried once the request may have reached the vendor. call names the customer
// and request for the audit records.
type provider interface {
	Name() string
	Find(ctx context.Context, conversation string, call resilience.Call) (ref, bool, error)
	Create(ctx context.Context, conversation string, t newTicket, call resilience.Call) (ref, error)
	KeyedCreate() bool
	Comment(ctx context.Context, ticketID, body string, public bool, call resilience.Call) (string, error)
	// check is the start check (check.go): nil, an error wrapping connector.ErrMisconfigured, or
	// the failure of a vendor it could not reach.
	check(ctx context.Context) error
	// NewTicketURL and TicketURL are the manual fallbacks.
	NewTicketURL() string
	TicketURL(id string) string
}

// errAmbiguous marks a create or comment whose outcome is unknown: it may have reached the vendor.
var errAmbiguous = errors.New("outcome unknown: the request may have reached the vendor")

// errKeyConflict marks a create the vendor refused because the conversation's idempotency key was
// used, within the vendor's memory of keys, by a create with other parameters.
var errKeyConflict = errors.New("the conversation's idempotency key was already used by a create with other parameters")

// jsonBody encodes a request body.
func jsonBody(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, bus.Permanent(err)
	}
	return b, nil
}

// --- Jira ---

type jiraProvider struct {
	cfg    Config
	client *http.Client
	routes routes
	auth   string
	log    *slog.Logger
}

func (p *jiraProvider) Name() string { return ProviderJira }

// KeyedCreate: Jira's create API has no idempotency key.
func (p *jiraProvider) KeyedCreate() bool { return false }

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

// jiraFindMax is the page a search asks for: one issue per conversation, a few if duplicates ever
// slipped through (the oldest comes first: ORDER BY key ASC).
const jiraFindMax = 10

func (p *jiraProvider) Find(ctx context.Context, conv string, c resilience.Call) (ref, bool, error) {
	q := jira.SearchRequest{JQL: "project = " + jira.JQLString(p.cfg.JiraProjectKey) + " AND labels = " + jira.JQLString(jira.LabelValue(LabelPrefix, conv)) +
		" ORDER BY key ASC", Fields: []string{"status", "labels"}, MaxResults: jiraFindMax}
	var res jira.SearchResult
	err := p.do(ctx, p.routes.search, c, http.MethodPost, jira.PathSearch, q, func(b []byte) (err error) {
		res, err = jira.ParseSearch(b)
		return err
	})
	if err != nil || len(res.Issues) == 0 {
		return ref{}, false, err
	}
	is := res.Issues[0]
	for _, c := range res.Issues[1:] {
		if olderIssue(c, is) {
			is = c
		}
	}
	if len(res.Issues) > 1 {
		keys := make([]string, len(res.Issues))
		for i, c := range res.Issues {
			keys[i] = c.Key
		}
		p.log.Warn("the conversation has several Jira issues; answering with the oldest", "conversation", conv, "issue", is.Key, "issues", keys, "more", !res.IsLast)
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

// olderIssue orders issues by id (Jira assigns ids in creation order), then by key number.
func olderIssue(a, b jira.Issue) bool {
	ai, aerr := strconv.ParseInt(a.ID, 10, 64)
	bi, berr := strconv.ParseInt(b.ID, 10, 64)
	if aerr == nil && berr == nil && ai != bi {
		return ai < bi
	}
	return keyNumber(a.Key) < keyNumber(b.Key)
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
	if t.Department != "" {
		f.Components = []jira.Ref{{Name: t.Department}}
	}
	var c jira.CreatedIssue
	create := func() error {
		return p.do(ctx, p.routes.create, call, http.MethodPost, jira.PathIssue, jira.CreateIssueRequest{Fields: f}, func(b []byte) (err error) {
			c, err = jira.ParseCreated(b)
			return err
		})
	}
	err := create()
	var je *jira.Error
	if errors.As(err, &je) && je.Status == http.StatusBadRequest && je.Body.Errors["components"] != "" && f.Components != nil {
		// The project has no such component: a 400 created nothing, so create it unrouted.
		p.log.Warn("the Jira project refused the component of TICKET_ROUTES; creating the issue without it", "conversation", conv,
			"component", t.Department, "err", err)
		f.Components = nil
		err = create()
	}
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
	log    *slog.Logger

	mu       sync.Mutex
	groups   map[string]int64 // group name → id, as last listed
	listedAt time.Time
}

// groupsRelist is how often a department missing from the groups is looked up again.
const groupsRelist = time.Minute

// groupID returns the id of the group named dept (a number is an id), listing the account's
// groups when it is not known yet; 0 (no group) when there is none or the list fails.
func (p *zendeskProvider) groupID(ctx context.Context, dept string, call resilience.Call) int64 {
	if id, err := strconv.ParseInt(dept, 10, 64); err == nil && id > 0 {
		return id
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if id, ok := p.groups[dept]; ok {
		return id
	}
	if !p.listedAt.IsZero() && time.Since(p.listedAt) < groupsRelist {
		return 0
	}
	var res zendesk.GroupsResponse
	err := p.do(ctx, p.routes.search, call, http.MethodGet, zendesk.PathGroups, nil, func(b []byte) (err error) {
		res, err = zendesk.ParseGroups(b)
		return err
	})
	if err != nil {
		p.log.Warn("listing the Zendesk groups failed; the ticket is not routed", "group", dept, "err", err)
		return 0
	}
	p.listedAt, p.groups = time.Now(), map[string]int64{}
	for _, g := range res.Groups {
		if !g.Deleted {
			p.groups[g.Name] = g.ID
		}
	}
	id, ok := p.groups[dept]
	if !ok {
		p.log.Warn("the Zendesk account has no group of TICKET_ROUTES; the ticket is not routed", "group", dept)
	}
	return id
}

func (p *zendeskProvider) Name() string { return ProviderZendesk }

// KeyedCreate: the create carries an Idempotency-Key derived from the conversation.
func (p *zendeskProvider) KeyedCreate() bool { return true }

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
	return p.send(ctx, rt, c, request{method: method, url: p.cfg.ZendeskAPIBase + path, parse: parse}, body)
}

func (p *zendeskProvider) send(ctx context.Context, rt *resilience.Route, c resilience.Call, r request, body any) error {
	if body != nil {
		var err error
		if r.body, err = jsonBody(body); err != nil {
			return err
		}
	}
	r.auth, r.vendorErr = p.auth, zendeskErr
	return send(ctx, rt, c, p.client, r)
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
	if len(res.Tickets) > 1 {
		ids := make([]int64, len(res.Tickets))
		for i, c := range res.Tickets {
			ids[i] = c.ID
		}
		p.log.Warn("the conversation has several Zendesk tickets; answering with the oldest", "conversation", conv, "ticket", t.ID, "tickets", ids)
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
	if t.Department != "" {
		nt.GroupID = p.groupID(ctx, t.Department, call)
	}
	// The key makes the create idempotent: the route retries it (a 5xx, a timeout, a lost answer);
	// Zendesk replays the first answer for a repeat (x-idempotency-lookup: hit) and creates nothing.
	var res zendesk.TicketResponse
	var writes atomic.Int32
	hit := false
	err := p.send(ctx, p.routes.create, call, request{method: http.MethodPost, url: p.cfg.ZendeskAPIBase + zendesk.PathTickets,
		header:  map[string]string{zendesk.HeaderIdempotencyKey: zendesk.IdempotencyKey(ExternalIDPrefix, conv)},
		writes:  &writes,
		inspect: func(h http.Header) { hit = h.Get(zendesk.HeaderIdempotencyLookup) == zendesk.LookupHit },
		parse: func(b []byte) (err error) {
			res, err = zendesk.ParseTicket(b)
			return err
		}}, zendesk.CreateRequest{Ticket: nt})
	var ze *zendesk.Error
	if errors.As(err, &ze) && ze.IdempotencyConflict() {
		return ref{}, fmt.Errorf("%w: %w", errKeyConflict, err)
	}
	if err != nil {
		return ref{}, err
	}
	id := strconv.FormatInt(res.Ticket.ID, 10)
	// A hit for a request written once replays the create of an earlier request; when it was
	// written again (a retry), the replay is most likely this call's own lost answer.
	return ref{ID: id, URL: p.TicketURL(id), Status: res.Ticket.Status, existing: hit && writes.Load() == 1}, nil
}

func (p *zendeskProvider) Comment(ctx context.Context, id, body string, public bool, call resilience.Call) (string, error) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return "", bus.Permanent(fmt.Errorf("zendesk ticket id %q is not a number", id))
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
