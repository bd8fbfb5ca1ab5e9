// Package jira is the Jira Cloud REST v3 wire format shared by the ticket connector and the
// sandbox simulator: Basic auth (email:api_token), issue creation with an Atlassian Document
// Format description, JQL search (POST /rest/api/3/search/jql), comments, issue status, Jira's
// error collection, and the admin webhook (jira:issue_updated with a changelog) signed with
// X-Hub-Signature: sha256=<hex HMAC-SHA256(secret, body)>.
package jira

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// REST paths below the site URL (https://<site>.atlassian.net).
const (
	PathIssue  = "/rest/api/3/issue"      // POST: create
	PathSearch = "/rest/api/3/search/jql" // POST: enhanced JQL search
	// PathIssueKey is /rest/api/3/issue/{issueIdOrKey}; PathComment adds /comment.
	PathIssueKey = "/rest/api/3/issue/"
	// PathMyself is GET: the user the credentials authenticate (401 when Jira refuses them).
	PathMyself = "/rest/api/3/myself"
	// PathProjectKey is /rest/api/3/project/{projectIdOrKey} (GET: the project with its issue
	// types and components; 404 "No project could be found with key 'X'.").
	PathProjectKey = "/rest/api/3/project/"
)

// Myself is the answer of GET /rest/api/3/myself (the fields the connector reads).
type Myself struct {
	Self         string `json:"self,omitempty"`
	AccountID    string `json:"accountId"`
	AccountType  string `json:"accountType,omitempty"`
	EmailAddress string `json:"emailAddress,omitempty"`
	DisplayName  string `json:"displayName,omitempty"`
	Active       bool   `json:"active"`
	TimeZone     string `json:"timeZone,omitempty"`
	Locale       string `json:"locale,omitempty"`
}

// ParseMyself decodes a GET myself answer.
func ParseMyself(body []byte) (Myself, error) {
	var m Myself
	if err := json.Unmarshal(body, &m); err != nil {
		return m, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if m.AccountID == "" {
		return m, fmt.Errorf("%w: myself without accountId", ErrMalformed)
	}
	return m, nil
}

// IssueType is one of a project's issue types.
type IssueType struct {
	Self        string `json:"self,omitempty"`
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Subtask     bool   `json:"subtask"`
}

// Component is one of a project's components.
type Component struct {
	Self string `json:"self,omitempty"`
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Project is the answer of GET /rest/api/3/project/{key} (the fields the connector reads).
type Project struct {
	Self           string      `json:"self,omitempty"`
	ID             string      `json:"id"`
	Key            string      `json:"key"`
	Name           string      `json:"name"`
	ProjectTypeKey string      `json:"projectTypeKey,omitempty"`
	Simplified     bool        `json:"simplified"`
	Style          string      `json:"style,omitempty"`
	IssueTypes     []IssueType `json:"issueTypes"`
	Components     []Component `json:"components"`
}

// ProjectPath returns /rest/api/3/project/{key}.
func ProjectPath(key string) string { return PathProjectKey + url.PathEscape(key) }

// ParseProject decodes a GET project answer.
func ParseProject(body []byte) (Project, error) {
	var p Project
	if err := json.Unmarshal(body, &p); err != nil {
		return p, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if p.Key == "" {
		return p, fmt.Errorf("%w: project without key", ErrMalformed)
	}
	return p, nil
}

// BasicAuth is the Authorization header value for an Atlassian account email and API token.
func BasicAuth(email, token string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(email+":"+token))
}

// Doc is an Atlassian Document Format document (version 1).
type Doc struct {
	Type    string `json:"type"`
	Version int    `json:"version"`
	Content []Node `json:"content"`
}

// Node is an ADF node: block nodes (paragraph) carry Content, text nodes carry Text.
type Node struct {
	Type    string `json:"type"`
	Text    string `json:"text,omitempty"`
	Content []Node `json:"content,omitempty"`
}

// Paragraphs builds a document from plain text: blank lines separate paragraphs, single newlines
// become hardBreak nodes. ADF forbids empty text nodes, so none are produced.
func Paragraphs(text string) Doc {
	d := Doc{Type: "doc", Version: 1, Content: []Node{}}
	text = strings.ReplaceAll(text, "\r\n", "\n")
	for _, para := range strings.Split(text, "\n\n") {
		para = strings.Trim(para, "\n")
		if strings.TrimSpace(para) == "" {
			continue
		}
		p := Node{Type: "paragraph"}
		for i, line := range strings.Split(para, "\n") {
			if i > 0 {
				p.Content = append(p.Content, Node{Type: "hardBreak"})
			}
			if line != "" {
				p.Content = append(p.Content, Node{Type: "text", Text: line})
			}
		}
		d.Content = append(d.Content, p)
	}
	return d
}

// PlainText flattens a document back to text (paragraphs joined by blank lines).
func (d Doc) PlainText() string {
	var paras []string
	for _, n := range d.Content {
		paras = append(paras, n.plain())
	}
	return strings.Join(paras, "\n\n")
}

func (n Node) plain() string {
	switch n.Type {
	case "text":
		return n.Text
	case "hardBreak":
		return "\n"
	}
	var b strings.Builder
	for _, c := range n.Content {
		b.WriteString(c.plain())
	}
	return b.String()
}

// Validate checks the document is ADF that Jira accepts: type doc, version 1, no empty text node.
func (d Doc) Validate() error {
	if d.Type != "doc" || d.Version != 1 {
		return fmt.Errorf("ADF: want type doc version 1, got %q %d", d.Type, d.Version)
	}
	var walk func(ns []Node) error
	walk = func(ns []Node) error {
		for _, n := range ns {
			switch n.Type {
			case "text":
				if n.Text == "" {
					return errors.New("ADF: empty text node")
				}
			case "":
				return errors.New("ADF: node without type")
			}
			if err := walk(n.Content); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(d.Content)
}

// Ref names a project, issue type or priority.
type Ref struct {
	Key  string `json:"key,omitempty"`
	Name string `json:"name,omitempty"`
	ID   string `json:"id,omitempty"`
}

// IssueFields are the fields of a create request.
type IssueFields struct {
	Project     Ref      `json:"project"`
	IssueType   Ref      `json:"issuetype"`
	Summary     string   `json:"summary"`
	Description *Doc     `json:"description,omitempty"`
	Labels      []string `json:"labels,omitempty"`
	Priority    *Ref     `json:"priority,omitempty"`
	// Components route the issue to a team (by name, as the project defines them).
	Components []Ref `json:"components,omitempty"`
}

// CreateIssueRequest is the body of POST /rest/api/3/issue.
type CreateIssueRequest struct {
	Fields IssueFields `json:"fields"`
}

// CreatedIssue is the 201 answer.
type CreatedIssue struct {
	ID   string `json:"id"`
	Key  string `json:"key"`
	Self string `json:"self"`
}

// ErrorCollection is Jira's error body (4xx).
type ErrorCollection struct {
	ErrorMessages []string          `json:"errorMessages"`
	Errors        map[string]string `json:"errors"`
}

// Status is an issue status with its category (new, indeterminate, done).
type Status struct {
	ID             string          `json:"id,omitempty"`
	Name           string          `json:"name"`
	StatusCategory *StatusCategory `json:"statusCategory,omitempty"`
}

// StatusCategory groups statuses: key "new" (To Do), "indeterminate" (In Progress), "done".
type StatusCategory struct {
	Key  string `json:"key"`
	Name string `json:"name,omitempty"`
}

// Issue is the subset of an issue omnibus reads (GET issue, search results, webhooks).
type Issue struct {
	ID     string         `json:"id"`
	Key    string         `json:"key"`
	Self   string         `json:"self,omitempty"`
	Fields IssueFieldsOut `json:"fields"`
}

// IssueFieldsOut are the fields omnibus reads back.
type IssueFieldsOut struct {
	Summary string   `json:"summary,omitempty"`
	Status  *Status  `json:"status,omitempty"`
	Labels  []string `json:"labels,omitempty"`
	Updated string   `json:"updated,omitempty"`
}

// SearchRequest is the body of POST /rest/api/3/search/jql.
type SearchRequest struct {
	JQL        string   `json:"jql"`
	Fields     []string `json:"fields,omitempty"`
	MaxResults int      `json:"maxResults,omitempty"`
}

// SearchResult is its answer.
type SearchResult struct {
	Issues        []Issue `json:"issues"`
	IsLast        bool    `json:"isLast"`
	NextPageToken string  `json:"nextPageToken,omitempty"`
}

// AddCommentRequest is the body of POST /rest/api/3/issue/{key}/comment.
type AddCommentRequest struct {
	Body Doc `json:"body"`
}

// Comment is the 201 answer to adding a comment.
type Comment struct {
	ID      string `json:"id"`
	Self    string `json:"self,omitempty"`
	Created string `json:"created,omitempty"`
}

// LabelValue turns an arbitrary key into a valid Jira label (no spaces; at most 255 characters).
func LabelValue(prefix, key string) string {
	s := prefix + strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\n' || r == '\r' {
			return '_'
		}
		return r
	}, key)
	if len(s) > 255 {
		s = s[:255]
	}
	return s
}

// JQLString quotes s as a JQL string literal.
func JQLString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}

// Error is a Jira REST failure: the HTTP status and the error collection.
type Error struct {
	Status int
	Body   ErrorCollection
}

func (e *Error) Error() string {
	var parts []string
	parts = append(parts, e.Body.ErrorMessages...)
	for k, v := range e.Body.Errors {
		parts = append(parts, k+": "+v)
	}
	return fmt.Sprintf("jira %d: %s", e.Status, strings.Join(parts, "; "))
}

// Is matches an *Error with the same HTTP status.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Status == e.Status
}

// Sentinels for errors.Is.
var (
	ErrUnauthorized = &Error{Status: 401}
	ErrNotFound     = &Error{Status: 404}
	ErrRateLimited  = &Error{Status: 429}
	ErrBadRequest   = &Error{Status: 400}
)

// ErrMalformed is wrapped for a body that is not Jira's shape.
var ErrMalformed = errors.New("jira: malformed body")

// DecodeError builds the *Error of a non-2xx answer (any body; Jira's collection when it is one).
func DecodeError(status int, body []byte) *Error {
	e := &Error{Status: status}
	if json.Unmarshal(body, &e.Body) != nil || (len(e.Body.ErrorMessages) == 0 && len(e.Body.Errors) == 0) {
		msg := strings.TrimSpace(string(body))
		if len(msg) > 256 {
			msg = msg[:256]
		}
		if msg == "" {
			msg = fmt.Sprintf("HTTP %d", status)
		}
		e.Body = ErrorCollection{ErrorMessages: []string{msg}}
	}
	return e
}

// ParseCreated decodes a 201 create answer.
func ParseCreated(body []byte) (CreatedIssue, error) {
	var c CreatedIssue
	if err := json.Unmarshal(body, &c); err != nil {
		return c, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if c.ID == "" || c.Key == "" {
		return c, fmt.Errorf("%w: created issue without id or key", ErrMalformed)
	}
	return c, nil
}

// ParseSearch decodes a search answer.
func ParseSearch(body []byte) (SearchResult, error) {
	var r SearchResult
	if err := json.Unmarshal(body, &r); err != nil {
		return r, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	for i, is := range r.Issues {
		if is.Key == "" {
			return r, fmt.Errorf("%w: issues[%d] without key", ErrMalformed, i)
		}
	}
	return r, nil
}

// ParseIssue decodes a GET issue answer.
func ParseIssue(body []byte) (Issue, error) {
	var is Issue
	if err := json.Unmarshal(body, &is); err != nil {
		return is, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if is.Key == "" || is.Fields.Status == nil || is.Fields.Status.Name == "" {
		return is, fmt.Errorf("%w: issue without key or status", ErrMalformed)
	}
	return is, nil
}

// ParseComment decodes a 201 add-comment answer.
func ParseComment(body []byte) (Comment, error) {
	var c Comment
	if err := json.Unmarshal(body, &c); err != nil {
		return c, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if c.ID == "" {
		return c, fmt.Errorf("%w: comment without id", ErrMalformed)
	}
	return c, nil
}

// Webhook headers.
const (
	HeaderSignature  = "X-Hub-Signature"
	HeaderIdentifier = "X-Atlassian-Webhook-Identifier" // unique per delivery, kept on retries
)

// WebhookSignature is the X-Hub-Signature value of body: "sha256=" + hex HMAC-SHA256(secret, body).
func WebhookSignature(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifyWebhook reports, in constant time, whether header signs body with secret.
func VerifyWebhook(secret string, body []byte, header string) bool {
	return hmac.Equal([]byte(header), []byte(WebhookSignature(secret, body)))
}

// WebhookEvent is the body of an issue webhook.
type WebhookEvent struct {
	Timestamp          int64      `json:"timestamp"` // epoch ms
	WebhookEvent       string     `json:"webhookEvent"`
	IssueEventTypeName string     `json:"issue_event_type_name,omitempty"`
	Issue              *Issue     `json:"issue,omitempty"`
	Changelog          *Changelog `json:"changelog,omitempty"`
}

// Webhook event names omnibus reads.
const (
	EventIssueCreated = "jira:issue_created"
	EventIssueUpdated = "jira:issue_updated"
)

// Changelog lists what an update changed.
type Changelog struct {
	ID    string          `json:"id"`
	Items []ChangelogItem `json:"items"`
}

// ChangelogItem is one changed field.
type ChangelogItem struct {
	Field      string `json:"field"`
	FieldType  string `json:"fieldtype,omitempty"`
	From       string `json:"from,omitempty"`
	FromString string `json:"fromString,omitempty"`
	To         string `json:"to,omitempty"`
	ToString   string `json:"toString,omitempty"`
}

// StatusChange returns the status transition an update carries, if any.
func (w WebhookEvent) StatusChange() (from, to string, ok bool) {
	if w.Changelog == nil {
		return "", "", false
	}
	for _, it := range w.Changelog.Items {
		if it.Field == "status" {
			return it.FromString, it.ToString, true
		}
	}
	return "", "", false
}

// ParseWebhook decodes an issue webhook. It requires webhookEvent, timestamp and an issue key.
func ParseWebhook(body []byte) (WebhookEvent, error) {
	var w WebhookEvent
	if err := json.Unmarshal(body, &w); err != nil {
		return w, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if w.WebhookEvent == "" || w.Timestamp <= 0 {
		return w, fmt.Errorf("%w: want webhookEvent and timestamp", ErrMalformed)
	}
	if w.Issue == nil || w.Issue.Key == "" || w.Issue.ID == "" {
		return w, fmt.Errorf("%w: webhook without issue id and key", ErrMalformed)
	}
	return w, nil
}
