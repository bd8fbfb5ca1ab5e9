// Package zendesk is the Zendesk Support API wire format shared by the ticket connector and the
// sandbox simulator: API-token Basic auth ("<email>/token:<api_token>"), ticket creation with an
// external_id and an Idempotency-Key, listing tickets by external_id (GET /api/v2/tickets.json?external_id=…), comments
// through a ticket update (PUT /api/v2/tickets/{id}.json), showing a ticket, Zendesk's error
// bodies (401 {"error":"Couldn't authenticate you"}, 404/422 {"error","description"}, 429 with
// Retry-After), and event-subscription webhooks signed with X-Zendesk-Webhook-Signature =
// base64(HMAC-SHA256(secret, timestamp + body)) and X-Zendesk-Webhook-Signature-Timestamp.
package zendesk

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// API paths below https://<subdomain>.zendesk.com.
const (
	PathTickets = "/api/v2/tickets.json" // POST create, GET list (?external_id=)
	// PathTicket is /api/v2/tickets/{id}.json (GET show, PUT update).
	PathTicketPrefix = "/api/v2/tickets/"
	// PathGroups lists the account's groups (GET; cursor pages of up to 100).
	PathGroups = "/api/v2/groups.json"
	// PathMe shows the user the credentials authenticate (GET). Zendesk answers credentials it
	// does not accept with 200 and the anonymous user (id null, role end-user), not a 401.
	PathMe = "/api/v2/users/me.json"
)

// User is the user of GET /api/v2/users/me.json (the fields the connector reads). ID is nil for
// the anonymous user.
type User struct {
	ID     *int64 `json:"id"`
	URL    string `json:"url,omitempty"`
	Name   string `json:"name"`
	Email  string `json:"email"`
	Role   string `json:"role"` // end-user, agent or admin
	Active bool   `json:"active"`
}

// Anonymous reports whether u is the anonymous user Zendesk answers credentials it does not
// accept with.
func (u User) Anonymous() bool { return u.ID == nil || *u.ID <= 0 }

// UserResponse is the answer of GET /api/v2/users/me.json.
type UserResponse struct {
	User User `json:"user"`
}

// ParseMe decodes a users/me answer.
func ParseMe(body []byte) (User, error) {
	var r UserResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return r.User, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if r.User.Role == "" {
		return r.User, fmt.Errorf("%w: user without role", ErrMalformed)
	}
	return r.User, nil
}

// Group is one group (team) of the account.
type Group struct {
	ID      int64  `json:"id"`
	Name    string `json:"name"`
	Deleted bool   `json:"deleted,omitempty"`
}

// GroupsResponse is the answer of GET /api/v2/groups.json.
type GroupsResponse struct {
	Groups   []Group `json:"groups"`
	NextPage *string `json:"next_page"`
	Count    int     `json:"count"`
}

// ParseGroups decodes a group list.
func ParseGroups(body []byte) (GroupsResponse, error) {
	var r GroupsResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return r, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	for i, g := range r.Groups {
		if g.ID <= 0 {
			return r, fmt.Errorf("%w: groups[%d] without id", ErrMalformed, i)
		}
	}
	return r, nil
}

// TicketPath returns /api/v2/tickets/{id}.json.
func TicketPath(id int64) string { return PathTicketPrefix + strconv.FormatInt(id, 10) + ".json" }

// BasicAuth is the Authorization header value for API-token authentication.
func BasicAuth(email, token string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(email+"/token:"+token))
}

// Idempotent ticket creation (developer.zendesk.com/api-reference/ticketing/introduction/#idempotency):
// POST /api/v2/tickets with the header Idempotency-Key: <key>, any string of at most 255
// characters, scoped to the account. Zendesk remembers a key for 2 hours. A repeat of the request
// with the same key and the same parameters creates nothing and returns the original response with
// x-idempotency-lookup: hit (a first use answers miss); the same key with other parameters answers
// 400 {"error":"IdempotentRequestError","description":"Request parameters don't match the given
// idempotency key"}.
const (
	HeaderIdempotencyKey    = "Idempotency-Key"
	HeaderIdempotencyLookup = "X-Idempotency-Lookup"
	LookupHit               = "hit"
	LookupMiss              = "miss"
	// MsgIdempotentRequestError is the error of a key reused with other parameters (400).
	MsgIdempotentRequestError = "IdempotentRequestError"
	// DescIdempotencyMismatch is its description.
	DescIdempotencyMismatch = "Request parameters don't match the given idempotency key"
	// IdempotencyKeyTTL is how long Zendesk remembers a key.
	IdempotencyKeyTTL = 2 * time.Hour
	// MaxIdempotencyKey is the longest key, in bytes.
	MaxIdempotencyKey = 255
)

// IdempotencyKey derives a valid key from prefix and id: prefix+id when that fits in
// MaxIdempotencyKey bytes, else prefix + "sha256:" + hex(SHA-256(id)) (prefix is cut to fit). The
// same id always gives the same key.
func IdempotencyKey(prefix, id string) string {
	if len(prefix)+len(id) <= MaxIdempotencyKey {
		return prefix + id
	}
	sum := sha256.Sum256([]byte(id))
	tail := "sha256:" + hex.EncodeToString(sum[:])
	if len(prefix) > MaxIdempotencyKey-len(tail) {
		prefix = prefix[:MaxIdempotencyKey-len(tail)]
	}
	return prefix + tail
}

// Comment is a ticket comment.
type Comment struct {
	Body   string `json:"body"`
	Public *bool  `json:"public,omitempty"`
}

// Requester names the ticket's requester (created on the fly if unknown).
type Requester struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
}

// NewTicket is the ticket of a create request.
type NewTicket struct {
	Subject    string     `json:"subject"`
	Comment    Comment    `json:"comment"`
	Priority   string     `json:"priority,omitempty"` // urgent, high, normal, low
	Requester  *Requester `json:"requester,omitempty"`
	Tags       []string   `json:"tags,omitempty"`
	ExternalID string     `json:"external_id,omitempty"`
	// GroupID assigns the ticket to a group (a team; GET /api/v2/groups.json lists them).
	GroupID int64 `json:"group_id,omitempty"`
}

// CreateRequest is the body of POST /api/v2/tickets.json.
type CreateRequest struct {
	Ticket NewTicket `json:"ticket"`
}

// UpdateRequest is the body of PUT /api/v2/tickets/{id}.json that adds a comment.
type UpdateRequest struct {
	Ticket TicketUpdate `json:"ticket"`
}

// TicketUpdate carries the comment (and optionally a status).
type TicketUpdate struct {
	Comment *Comment `json:"comment,omitempty"`
	Status  string   `json:"status,omitempty"`
}

// Ticket is the subset of a ticket omnibus reads.
type Ticket struct {
	ID          int64     `json:"id"`
	URL         string    `json:"url"`
	ExternalID  *string   `json:"external_id"`
	Subject     string    `json:"subject"`
	Description string    `json:"description,omitempty"`
	Status      string    `json:"status"` // new, open, pending, hold, solved, closed
	Priority    *string   `json:"priority"`
	RequesterID int64     `json:"requester_id,omitempty"`
	Tags        []string  `json:"tags"`
	GroupID     *int64    `json:"group_id,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// TicketResponse is the answer of create (201), update (200) and show (200).
type TicketResponse struct {
	Ticket Ticket `json:"ticket"`
	Audit  *Audit `json:"audit,omitempty"`
}

// Audit is the change record a create or update returns.
type Audit struct {
	ID        int64     `json:"id"`
	TicketID  int64     `json:"ticket_id"`
	CreatedAt time.Time `json:"created_at"`
}

// ListResponse is the answer of GET /api/v2/tickets.json.
type ListResponse struct {
	Tickets  []Ticket `json:"tickets"`
	NextPage *string  `json:"next_page"`
	Count    int      `json:"count"`
}

// ErrorBody is Zendesk's JSON error body.
type ErrorBody struct {
	Error       string          `json:"error"`
	Description string          `json:"description,omitempty"`
	Details     json.RawMessage `json:"details,omitempty"`
}

// Error is a Zendesk API failure: the HTTP status, the error body and, for 429, Retry-After.
type Error struct {
	Status     int
	Body       ErrorBody
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	s := fmt.Sprintf("zendesk %d: %s", e.Status, e.Body.Error)
	if e.Body.Description != "" {
		s += " (" + e.Body.Description + ")"
	}
	return s
}

// Is matches an *Error of the same HTTP status.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Status == e.Status
}

// IdempotencyConflict reports whether e is Zendesk's answer to an Idempotency-Key reused with
// other request parameters (400 IdempotentRequestError).
func (e *Error) IdempotencyConflict() bool {
	return e.Status == 400 && e.Body.Error == MsgIdempotentRequestError
}

// Sentinels for errors.Is.
var (
	ErrUnauthorized = &Error{Status: 401}
	ErrNotFound     = &Error{Status: 404}
	ErrInvalid      = &Error{Status: 422}
	ErrRateLimited  = &Error{Status: 429}
)

// Messages of Zendesk's common errors.
const (
	MsgUnauthorized = "Couldn't authenticate you"
	MsgNotFound     = "RecordNotFound"
	MsgInvalid      = "RecordInvalid"
)

// ErrMalformed is wrapped for a body that is not Zendesk's shape.
var ErrMalformed = errors.New("zendesk: malformed body")

// DecodeError builds the *Error of a non-2xx answer. retryAfter is the Retry-After header
// (seconds), "" if absent. The body may be JSON or, for 429 and some 400s, plain text.
func DecodeError(status int, body []byte, retryAfter string) *Error {
	e := &Error{Status: status}
	if json.Unmarshal(body, &e.Body) != nil || e.Body.Error == "" {
		msg := strings.TrimSpace(string(body))
		if len(msg) > 256 {
			msg = msg[:256]
		}
		if msg == "" {
			msg = fmt.Sprintf("HTTP %d", status)
		}
		e.Body = ErrorBody{Error: msg}
	}
	if s, err := strconv.Atoi(strings.TrimSpace(retryAfter)); err == nil && s >= 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
}

// ParseTicket decodes a create, update or show answer.
func ParseTicket(body []byte) (TicketResponse, error) {
	var r TicketResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return r, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if r.Ticket.ID <= 0 || r.Ticket.Status == "" {
		return r, fmt.Errorf("%w: ticket without id or status", ErrMalformed)
	}
	return r, nil
}

// ParseList decodes a ticket list.
func ParseList(body []byte) (ListResponse, error) {
	var r ListResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return r, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	for i, t := range r.Tickets {
		if t.ID <= 0 {
			return r, fmt.Errorf("%w: tickets[%d] without id", ErrMalformed, i)
		}
	}
	return r, nil
}

// Webhook headers.
const (
	HeaderSignature = "X-Zendesk-Webhook-Signature"
	HeaderTimestamp = "X-Zendesk-Webhook-Signature-Timestamp"
)

// WebhookSignature is base64(HMAC-SHA256(secret, timestamp + body)).
func WebhookSignature(secret, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// VerifyWebhook reports in constant time whether sig signs timestamp + body.
func VerifyWebhook(secret, timestamp string, body []byte, sig string) bool {
	return hmac.Equal([]byte(sig), []byte(WebhookSignature(secret, timestamp, body)))
}

// ParseWebhookTimestamp reads the signature timestamp: RFC 3339 (what Zendesk sends, e.g.
// "2024-09-03T07:59:07Z") or Unix seconds.
func ParseWebhookTimestamp(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0), nil
	}
	return time.Time{}, fmt.Errorf("%w: webhook timestamp %q is neither RFC 3339 nor Unix seconds", ErrMalformed, s)
}

// Event types of ticket event subscriptions omnibus reads.
const (
	EventTicketStatusChanged = "zen:event-type:ticket.status_changed"
	EventTicketCreated       = "zen:event-type:ticket.created"
)

// WebhookEvent is the body of an event-subscription webhook.
type WebhookEvent struct {
	Type      string       `json:"type"`
	AccountID int64        `json:"account_id,omitempty"`
	ID        string       `json:"id"` // unique per event
	Time      time.Time    `json:"time"`
	Subject   string       `json:"subject,omitempty"` // "zen:ticket:<id>"
	Detail    TicketDetail `json:"detail"`
	Event     StatusChange `json:"event"`
}

// TicketDetail is the ticket the event is about.
type TicketDetail struct {
	ID         string  `json:"id"`
	ExternalID *string `json:"external_id"`
	Status     string  `json:"status,omitempty"` // upper case in events: NEW, OPEN, PENDING, HOLD, SOLVED, CLOSED
	Subject    string  `json:"subject,omitempty"`
}

// StatusChange is the event of a status_changed webhook.
type StatusChange struct {
	Current  string `json:"current,omitempty"`
	Previous string `json:"previous,omitempty"`
}

// ParseWebhook decodes an event-subscription webhook; it requires type, id and the ticket id.
func ParseWebhook(body []byte) (WebhookEvent, error) {
	var w WebhookEvent
	if err := json.Unmarshal(body, &w); err != nil {
		return w, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if w.Type == "" || w.ID == "" || w.Detail.ID == "" {
		return w, fmt.Errorf("%w: want type, id and detail.id", ErrMalformed)
	}
	return w, nil
}
