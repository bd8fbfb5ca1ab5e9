// Package jira simulates a Jira Cloud site's REST v3 API, mounted on a sim.Env under /sandbox/jira:
//
//	POST /sandbox/jira/rest/api/3/issue                       op "issue/create"
//	POST /sandbox/jira/rest/api/3/search/jql                  op "search"
//	GET  /sandbox/jira/rest/api/3/issue/{key}                 op "issue/get"
//	POST /sandbox/jira/rest/api/3/issue/{key}/comment         op "issue/comment"
//	POST /sandbox/jira/rest/api/3/issue/{key}/transitions     op "issue/transition"
//	GET  /sandbox/jira/rest/api/3/myself                      op "myself"
//	GET  /sandbox/jira/rest/api/3/project/{key}               op "project/get"
//
// myself answers the account of the credentials (accountId, emailAddress, displayName, active);
// project/get answers the one project (by key or id 10000) with its issue types and components,
// else 404 {"errorMessages":["No project could be found with key 'X'."],"errors":{}}, as Jira
// Cloud does.
//
// Every call needs Basic auth with Config.Email and Config.APIToken, else 401 with Jira's error
// collection. Create checks the project key, the issue type, a non-empty summary, an ADF
// description, labels without spaces and components among Config.Components, answering 400 {"errorMessages":[],"errors":{field: msg}}
// as Jira does, and 201 {"id","key","self"}. Search understands the JQL the connector sends: clauses
// `project = X`, `labels = X` and `key = X` joined by AND, then optionally `ORDER BY key|id|created
// [ASC|DESC]` (anything else is 400; without ORDER BY, issues come in creation order). Like Jira,
// it does not deduplicate anything: two creates make two issues, and its create API has no
// idempotency key. Config.SearchLag reproduces Jira's eventually consistent search index: an issue
// is found by search only that long after its creation (GET by key sees it at once).
//
// A status change (a transitions call or Transition) posts the admin webhook jira:issue_updated
// with the status changelog to env.Hook(Config.WebhookPath), signed with X-Hub-Signature
// (HMAC-SHA256 of the body with Config.WebhookSecret) and an X-Atlassian-Webhook-Identifier that
// stays the same on retries (up to 3 attempts).
//
// Injected faults (sim.Fault.Code): "" is 500; "429" is 429 with Retry-After: 1 and "429:<s>" sets
// the seconds; any other number is answered with that HTTP status; every answer has Jira's error
// collection body. Those fail before the request is processed (nothing changes). "processed" (or
// "processed_<status>") processes the request — the issue IS created — and then answers 500 (or
// that status); "processed_drop" processes it and drops the connection without an answer: the
// lost-answer case a connector must reconcile.
package jira

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	wire "github.com/omnibus-dev/omnibus/pkg/wire/jira"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

// Vendor is the simulator's name under /sandbox/.
const Vendor = "jira"

// Route ops (fault keys are "jira <op>").
const (
	OpCreate     = "issue/create"
	OpSearch     = "search"
	OpGet        = "issue/get"
	OpComment    = "issue/comment"
	OpTransition = "issue/transition"
	OpMyself     = "myself"
	OpProject    = "project/get"
)

// IssueTypes are the issue types of the simulated project (a create naming another is refused).
var IssueTypes = []string{"Task", "Bug", "Story", "Incident", "Service request"}

// Statuses of the simulated workflow and their transition ids.
var workflow = []struct {
	id, name, category string
}{
	{"11", "To Do", "new"},
	{"21", "In Progress", "indeterminate"},
	{"31", "Done", "done"},
}

// Config configures the simulated site. Zero fields take the defaults shown.
type Config struct {
	// Email and APIToken are the account the connector authenticates as (JIRA_EMAIL,
	// JIRA_API_TOKEN). Required.
	Email, APIToken string
	// ProjectKey is the one project of the site. Default "CS".
	ProjectKey string
	// SiteURL is used in self links. Default "https://omnibus-sandbox.atlassian.net".
	SiteURL string
	// WebhookSecret signs the webhooks (the connector's JIRA_WEBHOOK_SECRET). Empty: webhooks
	// are sent unsigned.
	WebhookSecret string
	// WebhookPath is the webhook path below the hook base (see sim.Env.Hook). Default "/ticket/jira".
	WebhookPath string
	// Components are the project's components (names); a create naming another is refused
	// with 400 errors.components, as Jira does. Default DefaultComponents.
	Components []string
	// SearchLag is how long after its creation an issue becomes visible to search (Jira's index
	// lags behind writes). Default 0: at once.
	SearchLag time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// DefaultComponents are the sandbox project's components: the ticket connector's default
// TICKET_ROUTES departments.
var DefaultComponents = []string{"Orders", "Logistics", "Payments", "Accounts", "Complaints"}

// Issue is a stored issue.
type Issue struct {
	ID, Key     string
	Summary     string
	Description wire.Doc
	Labels      []string
	Priority    string
	IssueType   string
	Components  []string
	Status      string
	Comments    []wire.Doc
	Created     time.Time
}

// Sim is the running simulator.
type Sim struct {
	env *sim.Env
	cfg Config

	mu     sync.Mutex
	issues []*Issue
	byKey  map[string]*Issue
	hookN  int
}

// New mounts the simulator on env.
func New(env *sim.Env, cfg Config) (*Sim, error) {
	if cfg.Email == "" || cfg.APIToken == "" {
		return nil, errors.New("jira sandbox: Email and APIToken are required")
	}
	if cfg.ProjectKey == "" {
		cfg.ProjectKey = "CS"
	}
	if cfg.Components == nil {
		cfg.Components = DefaultComponents
	}
	if cfg.SiteURL == "" {
		cfg.SiteURL = "https://omnibus-sandbox.atlassian.net"
	}
	if cfg.WebhookPath == "" {
		cfg.WebhookPath = "/ticket/jira"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Sim{env: env, cfg: cfg, byKey: map[string]*Issue{}}
	for _, r := range []struct{ op, pattern string }{
		{OpCreate, "POST " + wire.PathIssue},
		{OpSearch, "POST " + wire.PathSearch},
		{OpGet, "GET " + wire.PathIssueKey + "{key}"},
		{OpComment, "POST " + wire.PathIssueKey + "{key}/comment"},
		{OpTransition, "POST " + wire.PathIssueKey + "{key}/transitions"},
		{OpMyself, "GET " + wire.PathMyself},
		{OpProject, "GET " + wire.PathProjectKey + "{key}"},
	} {
		h := s.auth(r.op, s.handler(r.op))
		env.Handle(sim.Route{Vendor: Vendor, Op: r.op, Pattern: r.pattern, Handler: h, Fail: sim.Processed(h, s.fail)})
	}
	return s, nil
}

func (s *Sim) handler(op string) http.HandlerFunc {
	switch op {
	case OpCreate:
		return s.create
	case OpSearch:
		return s.search
	case OpGet:
		return s.get
	case OpComment:
		return s.comment
	case OpMyself:
		return s.myself
	case OpProject:
		return s.project
	default:
		return s.transition
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	sim.WriteJSON(w, status, "application/json;charset=UTF-8", v)
}

func writeErr(w http.ResponseWriter, status int, messages []string, fields map[string]string) {
	if messages == nil {
		messages = []string{}
	}
	if fields == nil {
		fields = map[string]string{}
	}
	writeJSON(w, status, wire.ErrorCollection{ErrorMessages: messages, Errors: fields})
}

// fail renders an injected fault that fails before the request is processed (see the package
// doc; sim.Processed adds the lost-answer faults).
func (s *Sim) fail(w http.ResponseWriter, _ *http.Request, code string) {
	status, retryAfter := sim.FaultStatus(code)
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	writeErr(w, status, []string{http.StatusText(status) + " (injected fault " + code + ")"}, nil)
}

func (s *Sim) auth(op string, next http.HandlerFunc) http.HandlerFunc {
	return sim.RequireAuthorization(wire.BasicAuth(s.cfg.Email, s.cfg.APIToken), next, func(w http.ResponseWriter, r *http.Request) {
		s.env.Record(Vendor, op, "", map[string]string{"path": r.URL.Path}, errors.New("401: bad or missing Basic credentials"))
		w.Header().Set("WWW-Authenticate", `Basic realm="protected-area"`)
		writeErr(w, http.StatusUnauthorized, []string{"Client must be authenticated to access this resource."}, nil)
	})
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	if err := dec.Decode(v); err != nil {
		writeErr(w, http.StatusBadRequest, []string{"Unexpected character in request body: " + err.Error()}, nil)
		return false
	}
	return true
}

func (s *Sim) create(w http.ResponseWriter, r *http.Request) {
	var raw struct {
		Fields struct {
			Project     wire.Ref        `json:"project"`
			IssueType   wire.Ref        `json:"issuetype"`
			Summary     string          `json:"summary"`
			Description json.RawMessage `json:"description"`
			Labels      []string        `json:"labels"`
			Priority    *wire.Ref       `json:"priority"`
			Components  []wire.Ref      `json:"components"`
		} `json:"fields"`
	}
	if !readJSON(w, r, &raw) {
		s.env.Record(Vendor, OpCreate, "", nil, errors.New("400: body is not JSON"))
		return
	}
	f := raw.Fields
	errs := map[string]string{}
	if f.Project.Key != s.cfg.ProjectKey && f.Project.ID != "10000" {
		errs["project"] = "Specify a valid project ID or key"
	}
	if !slices.Contains(IssueTypes, f.IssueType.Name) {
		errs["issuetype"] = "Specify an issue type"
	}
	if strings.TrimSpace(f.Summary) == "" {
		errs["summary"] = "You must specify a summary of the issue."
	} else if len(f.Summary) > 255 {
		errs["summary"] = "Summary must be less than 255 characters."
	}
	var desc wire.Doc
	if len(f.Description) > 0 && string(f.Description) != "null" {
		if json.Unmarshal(f.Description, &desc) != nil || desc.Validate() != nil {
			errs["description"] = "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
		}
	}
	for _, l := range f.Labels {
		if strings.ContainsAny(l, " \t\n") || l == "" {
			errs["labels"] = fmt.Sprintf("The label '%s' contains spaces which is invalid.", l)
		}
	}
	prio := "Medium"
	if f.Priority != nil {
		switch f.Priority.Name {
		case "Highest", "High", "Medium", "Low", "Lowest":
			prio = f.Priority.Name
		default:
			errs["priority"] = "Specify the Priority (name) in the string format"
		}
	}
	var components []string
	for _, c := range f.Components {
		if !slices.Contains(s.cfg.Components, c.Name) {
			errs["components"] = fmt.Sprintf("Component name '%s' is not valid", c.Name)
		}
		components = append(components, c.Name)
	}
	if len(errs) > 0 {
		s.env.Record(Vendor, OpCreate, "", raw, fmt.Errorf("400: %v", errs))
		writeErr(w, http.StatusBadRequest, nil, errs)
		return
	}
	s.mu.Lock()
	n := len(s.issues) + 1
	is := &Issue{ID: strconv.Itoa(10000 + n), Key: fmt.Sprintf("%s-%d", s.cfg.ProjectKey, n), Summary: f.Summary,
		Description: desc, Labels: append([]string(nil), f.Labels...), Priority: prio, IssueType: f.IssueType.Name, Components: components,
		Status: workflow[0].name, Created: s.cfg.Now()}
	s.issues = append(s.issues, is)
	s.byKey[is.Key] = is
	s.mu.Unlock()
	s.env.Record(Vendor, OpCreate, is.Key, raw, nil)
	writeJSON(w, http.StatusCreated, wire.CreatedIssue{ID: is.ID, Key: is.Key, Self: s.self(is)})
}

func (s *Sim) self(is *Issue) string { return s.cfg.SiteURL + wire.PathIssueKey + is.ID }

func (s *Sim) view(is *Issue) wire.Issue {
	st := statusOf(is.Status)
	return wire.Issue{ID: is.ID, Key: is.Key, Self: s.self(is), Fields: wire.IssueFieldsOut{
		Summary: is.Summary, Labels: append([]string{}, is.Labels...), Status: &st,
		Updated: is.Created.Format("2006-01-02T15:04:05.000-0700")}}
}

func statusOf(name string) wire.Status {
	for _, st := range workflow {
		if st.name == name {
			return wire.Status{ID: st.id, Name: st.name, StatusCategory: &wire.StatusCategory{Key: st.category}}
		}
	}
	return wire.Status{Name: name}
}

type clause struct{ field, value string }

// order is a JQL ORDER BY: field key, id or created; "" keeps creation order.
type order struct {
	field string
	desc  bool
}

// jqlError is Jira's message for a query it cannot parse.
type jqlError string

func (e jqlError) Error() string { return string(e) }

// parseJQL understands `field = value [AND field = value ...] [ORDER BY field [ASC|DESC]]` with
// clause fields project, labels or key, values a bare word or a double-quoted string, and order
// fields key, id or created.
func parseJQL(q string) ([]clause, order, error) {
	var out []clause
	var ord order
	rest := strings.TrimSpace(q)
	if _, ok, err := parseOrder(rest); ok || err != nil {
		return nil, ord, jqlError("Unbounded JQL queries are not allowed here. Please add a search restriction to your query.")
	}
	for rest != "" {
		field, after, ok := strings.Cut(rest, "=")
		if !ok {
			return nil, ord, jqlError("Error in the JQL Query: Expecting operator but got the end of the query.")
		}
		field = strings.ToLower(strings.TrimSpace(field))
		if field != "project" && field != "labels" && field != "key" {
			return nil, ord, jqlError("Field '" + field + "' does not exist or you do not have permission to view it.")
		}
		after = strings.TrimSpace(after)
		var val string
		if strings.HasPrefix(after, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(after); i++ {
				c := after[i]
				if c == '\\' && i+1 < len(after) {
					i++
					b.WriteByte(after[i])
					continue
				}
				if c == '"' {
					break
				}
				b.WriteByte(c)
			}
			if i >= len(after) {
				return nil, ord, jqlError("Error in the JQL Query: The quoted string has not been completed.")
			}
			val, rest = b.String(), strings.TrimSpace(after[i+1:])
		} else {
			end := strings.IndexAny(after, " \t")
			if end < 0 {
				end = len(after)
			}
			val, rest = after[:end], strings.TrimSpace(after[end:])
		}
		out = append(out, clause{field, val})
		if rest == "" {
			break
		}
		if o, ok, err := parseOrder(rest); ok || err != nil {
			if err != nil {
				return nil, ord, err
			}
			return out, o, nil
		}
		kw, tail, _ := strings.Cut(rest, " ")
		if !strings.EqualFold(kw, "AND") {
			return nil, ord, jqlError("Error in the JQL Query: Expecting either 'OR' or 'AND' but got '" + kw + "'.")
		}
		rest = strings.TrimSpace(tail)
	}
	if len(out) == 0 {
		return nil, ord, jqlError("Error in the JQL Query: empty query")
	}
	return out, ord, nil
}

// parseOrder reads `ORDER BY field [ASC|DESC]` when s starts with ORDER (ok), which must end the
// query.
func parseOrder(s string) (order, bool, error) {
	words := strings.Fields(s)
	if len(words) == 0 || !strings.EqualFold(words[0], "ORDER") {
		return order{}, false, nil
	}
	if len(words) < 3 || !strings.EqualFold(words[1], "BY") {
		return order{}, true, jqlError("Error in the JQL Query: Expecting 'BY' after 'ORDER'.")
	}
	o := order{field: strings.ToLower(words[2])}
	switch o.field {
	case "key", "issuekey", "id", "created":
	default:
		return order{}, true, jqlError("Not able to sort using field '" + words[2] + "'.")
	}
	switch {
	case len(words) == 3:
	case len(words) == 4 && strings.EqualFold(words[3], "DESC"):
		o.desc = true
	case len(words) == 4 && strings.EqualFold(words[3], "ASC"):
	default:
		return order{}, true, jqlError("Error in the JQL Query: Expecting either 'ASC' or 'DESC' but got '" + strings.Join(words[3:], " ") + "'.")
	}
	return o, true, nil
}

func (s *Sim) search(w http.ResponseWriter, r *http.Request) {
	var req wire.SearchRequest
	if !readJSON(w, r, &req) {
		s.env.Record(Vendor, OpSearch, "", nil, errors.New("400: body is not JSON"))
		return
	}
	clauses, ord, err := parseJQL(req.JQL)
	if err != nil {
		s.env.Record(Vendor, OpSearch, "", req, err)
		writeErr(w, http.StatusBadRequest, []string{err.Error()}, nil)
		return
	}
	limit := req.MaxResults
	if limit <= 0 || limit > 100 {
		limit = 50
	}
	visible := s.cfg.Now().Add(-s.cfg.SearchLag)
	s.mu.Lock()
	var found []*Issue
	for _, is := range s.issues {
		if matches(is, clauses, s.cfg.ProjectKey) && (s.cfg.SearchLag <= 0 || !is.Created.After(visible)) {
			found = append(found, is)
		}
	}
	if ord.field != "" {
		// One project: key, id and creation order agree (issues are never moved or deleted here).
		sort.SliceStable(found, func(i, j int) bool { return ord.desc != (issueNumber(found[i]) < issueNumber(found[j])) })
	}
	res := wire.SearchResult{Issues: []wire.Issue{}, IsLast: len(found) <= limit}
	for _, is := range found[:min(limit, len(found))] {
		res.Issues = append(res.Issues, s.view(is))
	}
	s.mu.Unlock()
	s.env.Record(Vendor, OpSearch, req.JQL, req, nil)
	writeJSON(w, http.StatusOK, res)
}

func issueNumber(is *Issue) int {
	n, _ := strconv.Atoi(is.ID)
	return n
}

func matches(is *Issue, cs []clause, project string) bool {
	for _, c := range cs {
		switch c.field {
		case "project":
			if !strings.EqualFold(c.value, project) {
				return false
			}
		case "key":
			if !strings.EqualFold(c.value, is.Key) {
				return false
			}
		case "labels":
			found := false
			for _, l := range is.Labels {
				found = found || l == c.value
			}
			if !found {
				return false
			}
		}
	}
	return true
}

func (s *Sim) lookup(w http.ResponseWriter, r *http.Request, op string) *Issue {
	key := r.PathValue("key")
	s.mu.Lock()
	is := s.byKey[key]
	if is == nil {
		for _, c := range s.issues {
			if c.ID == key {
				is = c
			}
		}
	}
	s.mu.Unlock()
	if is == nil {
		s.env.Record(Vendor, op, key, nil, errors.New("404: no such issue"))
		writeErr(w, http.StatusNotFound, []string{"Issue does not exist or you do not have permission to see it."}, nil)
	}
	return is
}

func (s *Sim) get(w http.ResponseWriter, r *http.Request) {
	is := s.lookup(w, r, OpGet)
	if is == nil {
		return
	}
	s.mu.Lock()
	v := s.view(is)
	s.mu.Unlock()
	s.env.Record(Vendor, OpGet, is.Key, map[string]string{"key": is.Key}, nil)
	writeJSON(w, http.StatusOK, v)
}

// accountID is the simulated account's Atlassian account id.
const accountID = "5b10ac8d82e05b22cc7d4ef5"

func (s *Sim) myself(w http.ResponseWriter, _ *http.Request) {
	s.env.Record(Vendor, OpMyself, "", nil, nil)
	writeJSON(w, http.StatusOK, wire.Myself{Self: s.cfg.SiteURL + "/rest/api/3/user?accountId=" + accountID, AccountID: accountID,
		AccountType: "atlassian", EmailAddress: s.cfg.Email, DisplayName: "omnibus", Active: true, TimeZone: "Asia/Shanghai", Locale: "zh_CN"})
}

func (s *Sim) project(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if key != s.cfg.ProjectKey && key != "10000" {
		s.env.Record(Vendor, OpProject, key, nil, errors.New("404: no such project"))
		writeErr(w, http.StatusNotFound, []string{"No project could be found with key '" + key + "'."}, nil)
		return
	}
	self := s.cfg.SiteURL + wire.PathProjectKey + "10000"
	p := wire.Project{Self: self, ID: "10000", Key: s.cfg.ProjectKey, Name: "Customer Service", ProjectTypeKey: "software", Style: "classic",
		IssueTypes: []wire.IssueType{}, Components: []wire.Component{}}
	for i, n := range IssueTypes {
		id := strconv.Itoa(10001 + i)
		p.IssueTypes = append(p.IssueTypes, wire.IssueType{Self: s.cfg.SiteURL + "/rest/api/3/issuetype/" + id, ID: id, Name: n})
	}
	for i, n := range s.cfg.Components {
		id := strconv.Itoa(10100 + i)
		p.Components = append(p.Components, wire.Component{Self: s.cfg.SiteURL + "/rest/api/3/component/" + id, ID: id, Name: n})
	}
	s.env.Record(Vendor, OpProject, key, map[string]string{"key": key}, nil)
	writeJSON(w, http.StatusOK, p)
}

func (s *Sim) comment(w http.ResponseWriter, r *http.Request) {
	is := s.lookup(w, r, OpComment)
	if is == nil {
		return
	}
	var req wire.AddCommentRequest
	if !readJSON(w, r, &req) {
		s.env.Record(Vendor, OpComment, is.Key, nil, errors.New("400: body is not JSON"))
		return
	}
	if err := req.Body.Validate(); err != nil || len(req.Body.Content) == 0 {
		s.env.Record(Vendor, OpComment, is.Key, req, fmt.Errorf("400: %w", err))
		writeErr(w, http.StatusBadRequest, nil, map[string]string{"comment": "Comment body can not be empty!"})
		return
	}
	s.mu.Lock()
	is.Comments = append(is.Comments, req.Body)
	id := strconv.Itoa(10000*len(s.issues) + len(is.Comments))
	s.mu.Unlock()
	s.env.Record(Vendor, OpComment, is.Key, req, nil)
	writeJSON(w, http.StatusCreated, wire.Comment{ID: id, Self: s.self(is) + "/comment/" + id,
		Created: s.cfg.Now().Format("2006-01-02T15:04:05.000-0700")})
}

func (s *Sim) transition(w http.ResponseWriter, r *http.Request) {
	is := s.lookup(w, r, OpTransition)
	if is == nil {
		return
	}
	var req struct {
		Transition struct {
			ID string `json:"id"`
		} `json:"transition"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	name := ""
	for _, st := range workflow {
		if st.id == req.Transition.ID {
			name = st.name
		}
	}
	if name == "" {
		s.env.Record(Vendor, OpTransition, is.Key, req, errors.New("400: unknown transition"))
		writeErr(w, http.StatusBadRequest, []string{"Transition id '" + req.Transition.ID + "' is not valid for this issue."}, nil)
		return
	}
	s.env.Record(Vendor, OpTransition, is.Key, req, nil)
	w.WriteHeader(http.StatusNoContent)
	// The webhook outlives the request: its context without the cancel.
	go func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := s.Transition(ctx, is.Key, name); err != nil {
			s.env.Log.Warn("jira sandbox: webhook not delivered", "issue", is.Key, "err", err)
		}
	}(context.WithoutCancel(r.Context()))
}

// Issues returns a copy of every issue, oldest first.
func (s *Sim) Issues() []Issue {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Issue, len(s.issues))
	for i, is := range s.issues {
		out[i] = *is
		out[i].Labels = append([]string(nil), is.Labels...)
		out[i].Comments = append([]wire.Doc(nil), is.Comments...)
	}
	return out
}

// Transition moves the issue to status (To Do, In Progress, Done) and delivers the
// jira:issue_updated webhook to the connector, retrying up to 3 times. It returns the last
// delivery error (the status changes regardless).
func (s *Sim) Transition(ctx context.Context, key, status string) error {
	s.mu.Lock()
	is := s.byKey[key]
	if is == nil {
		s.mu.Unlock()
		return fmt.Errorf("jira sandbox: no issue %s", key)
	}
	from := is.Status
	is.Status = status
	s.hookN++
	ident := fmt.Sprintf("%d", 1700000000000+int64(s.hookN))
	fromSt, toSt := statusOf(from), statusOf(status)
	ev := wire.WebhookEvent{Timestamp: s.cfg.Now().UnixMilli(), WebhookEvent: wire.EventIssueUpdated,
		IssueEventTypeName: "issue_generic", Changelog: &wire.Changelog{ID: ident, Items: []wire.ChangelogItem{{
			Field: "status", FieldType: "jira", From: fromSt.ID, FromString: from, To: toSt.ID, ToString: status}}}}
	v := s.view(is)
	ev.Issue = &v
	s.mu.Unlock()
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	return s.deliver(ctx, body, ident)
}

func (s *Sim) deliver(ctx context.Context, body []byte, ident string) error {
	return sim.Deliver(ctx, s.env.Client, s.env.Hook(s.cfg.WebhookPath), body, func(h http.Header) {
		h.Set(wire.HeaderIdentifier, ident) // the same on every attempt
		if s.cfg.WebhookSecret != "" {
			h.Set(wire.HeaderSignature, wire.WebhookSignature(s.cfg.WebhookSecret, body))
		}
	})
}
