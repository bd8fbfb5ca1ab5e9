// Package zendesk simulates the Zendesk Support tickets API, mounted on a sim.Env under
// /sandbox/zendesk:
//
//	POST /sandbox/zendesk/api/v2/tickets.json          op "tickets/create"
//	GET  /sandbox/zendesk/api/v2/tickets.json?external_id=..   op "tickets/list"
//	GET  /sandbox/zendesk/api/v2/tickets/{id}.json     op "tickets/show"
//	PUT  /sandbox/zendesk/api/v2/tickets/{id}.json     op "tickets/update"
//	GET  /sandbox/zendesk/api/v2/groups.json           op "groups/list"  (Config.Groups; a create with another group_id is refused)
//	GET  /sandbox/zendesk/api/v2/users/me.json         op "users/me"
//
// users/me answers the agent of the credentials; like Zendesk, it answers any other credentials
// (or none) with 200 and the anonymous user ({"user":{"id":null,"name":"Anonymous user",
// "email":"invalid@example.com","role":"end-user",...}}), not a 401.
//
// (the .json suffix is optional, as on Zendesk). Every call needs API-token Basic auth
// ("<Config.Email>/token:<Config.APIToken>"), else 401 {"error":"Couldn't authenticate you"}.
// Create requires a comment body (422 RecordInvalid otherwise) and answers 201 with the ticket,
// its audit and a Location header. Like Zendesk, external_id is NOT unique: two creates with the
// same external_id make two tickets — a connector must look before it creates, or send a key.
//
// Idempotency-Key on create, as Zendesk documents it: a key seen within Config.IdempotencyTTL
// (default 2 hours) with the same parameters creates nothing and replays the original 201 (status,
// body, Location) with x-idempotency-lookup: hit; a first use answers miss; the same key with other
// parameters answers 400 {"error":"IdempotentRequestError","description":"Request parameters don't
// match the given idempotency key"}. Parameters are compared as JSON values (key order and spacing
// do not matter). Choices of the sandbox where Zendesk documents nothing: only a created ticket
// stores its key (a 4xx answer does not, so a corrected request may reuse it); a request whose key
// is being processed waits for that request and then gets its outcome; a key longer than 255 bytes
// answers 400 IdempotentRequestError.
//
// A status change (an update carrying "status", or SetStatus) posts an event-subscription webhook
// zen:event-type:ticket.status_changed to env.Hook(Config.WebhookPath), signed with
// X-Zendesk-Webhook-Signature = base64(HMAC-SHA256(secret, timestamp + body)) and
// X-Zendesk-Webhook-Signature-Timestamp (RFC 3339), retried up to 3 times with the same event id.
//
// Injected faults (sim.Fault.Code): "" is 500; "429" is 429 with Retry-After: 1 ("429:<s>" sets the
// seconds) and Zendesk's plain-text rate-limit body; any other number is that HTTP status with
// a JSON {"error"} body. Those fail before the request is processed: nothing changes, as when
// Zendesk refuses a call. "processed" (or "processed_<status>") is the nasty case: the request IS
// processed — the ticket created, its idempotency key stored — and then the answer is a 500 (or
// that status); "processed_drop" processes it and then drops the connection without an answer.
package zendesk

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	wire "github.com/omnibus-dev/omnibus/pkg/wire/zendesk"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

// Vendor is the simulator's name under /sandbox/.
const Vendor = "zendesk"

// Route ops (fault keys are "zendesk <op>").
const (
	OpCreate = "tickets/create"
	OpList   = "tickets/list"
	OpShow   = "tickets/show"
	OpUpdate = "tickets/update"
)

// Config configures the simulated account. Zero fields take the defaults shown.
type Config struct {
	// Email and APIToken authenticate the connector (ZENDESK_EMAIL, ZENDESK_API_TOKEN). Required.
	Email, APIToken string
	// Subdomain is used in ticket urls. Default "omnibus-sandbox".
	Subdomain string
	// WebhookSecret signs the webhooks (the connector's ZENDESK_WEBHOOK_SECRET). Empty: unsigned.
	WebhookSecret string
	// WebhookPath is the webhook path below the hook base (see sim.Env.Hook). Default "/ticket/zendesk".
	WebhookPath string
	// Groups are the account's groups, name → id (GET /api/v2/groups.json). Default
	// DefaultGroups. A create naming another group_id is refused with 422, as Zendesk does.
	Groups map[string]int64
	// IdempotencyTTL is how long an Idempotency-Key is remembered. Default 2h (Zendesk's).
	IdempotencyTTL time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// DefaultGroups are the sandbox account's groups: the ticket connector's default TICKET_ROUTES
// departments.
var DefaultGroups = map[string]int64{"Orders": 360000101, "Logistics": 360000102, "Payments": 360000103, "Accounts": 360000104, "Complaints": 360000105}

// OpGroups is the op of the group list; OpMe the one of users/me.
const (
	OpGroups = "groups/list"
	OpMe     = "users/me"
)

// Ticket is a stored ticket.
type Ticket struct {
	wire.Ticket
	Comments []wire.Comment
}

// Sim is the running simulator.
type Sim struct {
	env *sim.Env
	cfg Config

	mu      sync.Mutex
	tickets []*Ticket
	byID    map[int64]*Ticket
	audits  int64
	events  int
	keys    map[string]*keyed // Idempotency-Key → its request
	expiry  []*keyed          // stored keys, oldest first
	lookups Lookups
}

// keyed is a create request sent with an Idempotency-Key.
type keyed struct {
	key     string
	params  [32]byte      // SHA-256 of the canonical JSON parameters
	done    chan struct{} // closed when the first request is answered; nil once stored
	status  int
	header  http.Header
	body    []byte
	expires time.Time
}

// Lookups counts the creates that carried an Idempotency-Key, by outcome.
type Lookups struct {
	Hits, Misses, Mismatches int64
}

// New mounts the simulator on env.
func New(env *sim.Env, cfg Config) (*Sim, error) {
	if cfg.Email == "" || cfg.APIToken == "" {
		return nil, errors.New("zendesk sandbox: Email and APIToken are required")
	}
	if cfg.Subdomain == "" {
		cfg.Subdomain = "omnibus-sandbox"
	}
	if cfg.WebhookPath == "" {
		cfg.WebhookPath = "/ticket/zendesk"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Groups == nil {
		cfg.Groups = DefaultGroups
	}
	if cfg.IdempotencyTTL <= 0 {
		cfg.IdempotencyTTL = wire.IdempotencyKeyTTL
	}
	s := &Sim{env: env, cfg: cfg, byID: map[int64]*Ticket{}, keys: map[string]*keyed{}}
	for _, r := range []struct {
		op, pattern string
		h           http.HandlerFunc
	}{
		{OpCreate, "POST /api/v2/tickets.json", s.create},
		{OpCreate, "POST /api/v2/tickets", s.create},
		{OpList, "GET /api/v2/tickets.json", s.list},
		{OpList, "GET /api/v2/tickets", s.list},
		{OpShow, "GET /api/v2/tickets/{file}", s.show},
		{OpUpdate, "PUT /api/v2/tickets/{file}", s.update},
		{OpGroups, "GET /api/v2/groups.json", s.groups},
		{OpGroups, "GET /api/v2/groups", s.groups},
	} {
		h := s.auth(r.op, r.h)
		env.Handle(sim.Route{Vendor: Vendor, Op: r.op, Pattern: r.pattern, Handler: h, Fail: sim.Processed(h, s.fail)})
	}
	for _, p := range []string{"GET " + wire.PathMe, "GET /api/v2/users/me"} {
		env.Handle(sim.Route{Vendor: Vendor, Op: OpMe, Pattern: p, Handler: s.me, Fail: s.fail})
	}
	return s, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	sim.WriteJSON(w, status, "application/json; charset=utf-8", v)
}

// fail renders an injected fault that fails before the request is processed (see the package
// doc; sim.Processed adds the lost-answer faults).
func (s *Sim) fail(w http.ResponseWriter, _ *http.Request, code string) {
	status, retryAfter := sim.FaultStatus(code)
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", retryAfter)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "Rate limit for ticket updates exceeded, please wait before updating this ticket again")
		return
	}
	writeJSON(w, status, wire.ErrorBody{Error: http.StatusText(status), Description: "injected fault " + code})
}

func (s *Sim) auth(op string, next http.HandlerFunc) http.HandlerFunc {
	return sim.RequireAuthorization(wire.BasicAuth(s.cfg.Email, s.cfg.APIToken), next, func(w http.ResponseWriter, r *http.Request) {
		s.env.Record(Vendor, op, "", map[string]string{"path": r.URL.Path}, errors.New("401: bad or missing API token credentials"))
		writeJSON(w, http.StatusUnauthorized, wire.ErrorBody{Error: wire.MsgUnauthorized})
	})
}

func (s *Sim) url(id int64) string {
	return "https://" + s.cfg.Subdomain + ".zendesk.com" + wire.TicketPath(id)
}

func invalid(w http.ResponseWriter, field, msg string) { writeAnswer(w, invalidAnswer(field, msg)) }

func (s *Sim) create(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		s.env.Record(Vendor, OpCreate, "", nil, fmt.Errorf("400: %w", err))
		writeJSON(w, http.StatusBadRequest, wire.ErrorBody{Error: "Unprocessable JSON", Description: err.Error()})
		return
	}
	key := r.Header.Get(wire.HeaderIdempotencyKey)
	if key == "" {
		writeAnswer(w, s.createTicket(raw))
		return
	}
	if len(key) > wire.MaxIdempotencyKey {
		s.env.Record(Vendor, OpCreate, "", map[string]string{"idempotency_key": key}, errors.New("400: idempotency key too long"))
		writeJSON(w, http.StatusBadRequest, wire.ErrorBody{Error: wire.MsgIdempotentRequestError,
			Description: fmt.Sprintf("Idempotency-Key is %d bytes, at most %d are allowed", len(key), wire.MaxIdempotencyKey)})
		return
	}
	params := canonical(raw)
	var k *keyed
	for k == nil {
		s.mu.Lock()
		s.expire()
		prev := s.keys[key]
		switch {
		case prev == nil:
			k = &keyed{key: key, params: params, done: make(chan struct{})}
			s.keys[key] = k
			s.mu.Unlock()
		case prev.done != nil: // the first request with this key is being processed: wait for it
			done := prev.done
			s.mu.Unlock()
			select {
			case <-done:
			case <-r.Context().Done():
				return
			}
		case prev.params != params:
			s.lookups.Mismatches++
			s.mu.Unlock()
			s.env.Record(Vendor, OpCreate, "", map[string]string{"idempotency_key": key}, errors.New("400: "+wire.DescIdempotencyMismatch))
			writeJSON(w, http.StatusBadRequest, wire.ErrorBody{Error: wire.MsgIdempotentRequestError, Description: wire.DescIdempotencyMismatch})
			return
		default:
			s.lookups.Hits++
			a := answer{status: prev.status, header: prev.header.Clone(), body: prev.body}
			s.mu.Unlock()
			s.env.Record(Vendor, OpCreate, "", map[string]string{"idempotency_key": key, "idempotency_lookup": wire.LookupHit}, nil)
			a.header.Set(wire.HeaderIdempotencyLookup, wire.LookupHit)
			writeAnswer(w, a)
			return
		}
	}
	a := s.createTicket(raw)
	s.mu.Lock()
	if a.status == http.StatusCreated {
		k.status, k.header, k.body = a.status, a.header.Clone(), a.body
		k.expires = s.cfg.Now().Add(s.cfg.IdempotencyTTL)
		s.expiry = append(s.expiry, k)
		s.lookups.Misses++
	} else {
		delete(s.keys, key) // nothing was created: the key stays free
	}
	close(k.done)
	k.done = nil
	s.mu.Unlock()
	a.header.Set(wire.HeaderIdempotencyLookup, wire.LookupMiss)
	writeAnswer(w, a)
}

// expire forgets the keys older than the TTL. s.mu is held.
func (s *Sim) expire() {
	now := s.cfg.Now()
	for len(s.expiry) > 0 && !s.expiry[0].expires.After(now) {
		k := s.expiry[0]
		s.expiry[0] = nil
		s.expiry = s.expiry[1:]
		if s.keys[k.key] == k {
			delete(s.keys, k.key)
		}
	}
}

// canonical hashes a request body as a JSON value (re-encoded: object keys sorted, no spacing),
// or as bytes when it is not JSON.
func canonical(raw []byte) [32]byte {
	var v any
	if json.Unmarshal(raw, &v) == nil {
		if b, err := json.Marshal(v); err == nil {
			raw = b
		}
	}
	return sha256.Sum256(raw)
}

// answer is an HTTP answer kept for an idempotent replay.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func jsonAnswer(status int, v any, h http.Header) answer {
	if h == nil {
		h = http.Header{}
	}
	h.Set("Content-Type", "application/json; charset=utf-8")
	b, _ := json.Marshal(v)
	return answer{status: status, header: h, body: append(b, '\n')}
}

func writeAnswer(w http.ResponseWriter, a answer) {
	for k, v := range a.header {
		w.Header()[k] = v
	}
	w.WriteHeader(a.status)
	_, _ = w.Write(a.body)
}

// createTicket processes a create request body.
func (s *Sim) createTicket(raw []byte) answer {
	var req wire.CreateRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		s.env.Record(Vendor, OpCreate, "", nil, fmt.Errorf("400: %w", err))
		return jsonAnswer(http.StatusBadRequest, wire.ErrorBody{Error: "Unprocessable JSON", Description: err.Error()}, nil)
	}
	t := req.Ticket
	if strings.TrimSpace(t.Comment.Body) == "" {
		s.env.Record(Vendor, OpCreate, t.ExternalID, req, errors.New("422: description blank"))
		return invalidAnswer("description", "Description: cannot be blank")
	}
	switch t.Priority {
	case "", "urgent", "high", "normal", "low":
	default:
		s.env.Record(Vendor, OpCreate, t.ExternalID, req, errors.New("422: priority"))
		return invalidAnswer("priority", "Priority: is not valid")
	}
	if t.GroupID != 0 && !slices.Contains(slices.Collect(maps.Values(s.cfg.Groups)), t.GroupID) {
		s.env.Record(Vendor, OpCreate, t.ExternalID, req, errors.New("422: group"))
		return invalidAnswer("group", "Group: is invalid")
	}
	now := s.cfg.Now().UTC().Truncate(time.Second)
	subject := t.Subject
	if subject == "" {
		subject = firstLine(t.Comment.Body)
	}
	s.mu.Lock()
	id := int64(35436 + len(s.tickets))
	tk := &Ticket{Ticket: wire.Ticket{ID: id, URL: s.url(id), Subject: subject, Description: t.Comment.Body,
		Status: "new", RequesterID: 20978392, Tags: append([]string{}, t.Tags...), CreatedAt: now, UpdatedAt: now},
		Comments: []wire.Comment{t.Comment}}
	if t.ExternalID != "" {
		ext := t.ExternalID
		tk.ExternalID = &ext
	}
	if t.Priority != "" {
		p := t.Priority
		tk.Priority = &p
	}
	if t.GroupID != 0 {
		g := t.GroupID
		tk.GroupID = &g
	}
	s.tickets = append(s.tickets, tk)
	s.byID[id] = tk
	s.audits++
	resp := wire.TicketResponse{Ticket: tk.Ticket, Audit: &wire.Audit{ID: s.audits, TicketID: id, CreatedAt: now}}
	s.mu.Unlock()
	s.env.Record(Vendor, OpCreate, t.ExternalID, req, nil)
	return jsonAnswer(http.StatusCreated, resp, http.Header{"Location": {s.url(id)}})
}

func invalidAnswer(field, msg string) answer {
	details, _ := json.Marshal(map[string]any{field: []map[string]string{{"description": msg, "error": "BlankValue"}}})
	return jsonAnswer(http.StatusUnprocessableEntity, wire.ErrorBody{Error: wire.MsgInvalid, Description: "Record validation errors", Details: details}, nil)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	if r := []rune(line); len(r) > 80 {
		line = string(r[:80])
	}
	return line
}

func (s *Sim) list(w http.ResponseWriter, r *http.Request) {
	ext := r.URL.Query().Get("external_id")
	s.mu.Lock()
	out := wire.ListResponse{Tickets: []wire.Ticket{}}
	for _, t := range s.tickets {
		if ext == "" || (t.ExternalID != nil && *t.ExternalID == ext) {
			out.Tickets = append(out.Tickets, t.Ticket)
		}
	}
	s.mu.Unlock()
	out.Count = len(out.Tickets)
	s.env.Record(Vendor, OpList, ext, map[string]string{"external_id": ext}, nil)
	writeJSON(w, http.StatusOK, out)
}

func (s *Sim) find(w http.ResponseWriter, r *http.Request, op string) *Ticket {
	file := r.PathValue("file")
	id, err := strconv.ParseInt(strings.TrimSuffix(file, ".json"), 10, 64)
	s.mu.Lock()
	t := s.byID[id]
	s.mu.Unlock()
	if err != nil || t == nil {
		s.env.Record(Vendor, op, file, nil, errors.New("404: RecordNotFound"))
		writeJSON(w, http.StatusNotFound, wire.ErrorBody{Error: wire.MsgNotFound, Description: "Not found"})
		return nil
	}
	return t
}

func (s *Sim) show(w http.ResponseWriter, r *http.Request) {
	t := s.find(w, r, OpShow)
	if t == nil {
		return
	}
	s.mu.Lock()
	resp := wire.TicketResponse{Ticket: t.Ticket}
	s.mu.Unlock()
	s.env.Record(Vendor, OpShow, strconv.FormatInt(t.ID, 10), nil, nil)
	writeJSON(w, http.StatusOK, resp)
}

var statuses = map[string]bool{"new": true, "open": true, "pending": true, "hold": true, "solved": true, "closed": true}

func (s *Sim) update(w http.ResponseWriter, r *http.Request) {
	t := s.find(w, r, OpUpdate)
	if t == nil {
		return
	}
	var req wire.UpdateRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		s.env.Record(Vendor, OpUpdate, strconv.FormatInt(t.ID, 10), nil, fmt.Errorf("400: %w", err))
		writeJSON(w, http.StatusBadRequest, wire.ErrorBody{Error: "Unprocessable JSON", Description: err.Error()})
		return
	}
	u := req.Ticket
	if u.Comment != nil && strings.TrimSpace(u.Comment.Body) == "" {
		s.env.Record(Vendor, OpUpdate, strconv.FormatInt(t.ID, 10), req, errors.New("422: comment blank"))
		invalid(w, "comment", "Comment: cannot be blank")
		return
	}
	if u.Status != "" && !statuses[u.Status] {
		s.env.Record(Vendor, OpUpdate, strconv.FormatInt(t.ID, 10), req, errors.New("422: status"))
		invalid(w, "status", "Status: is not valid")
		return
	}
	now := s.cfg.Now().UTC().Truncate(time.Second)
	s.mu.Lock()
	if u.Comment != nil {
		t.Comments = append(t.Comments, *u.Comment)
	}
	prev := t.Status
	if u.Status != "" {
		t.Status = u.Status
	}
	t.UpdatedAt = now
	s.audits++
	resp := wire.TicketResponse{Ticket: t.Ticket, Audit: &wire.Audit{ID: s.audits, TicketID: t.ID, CreatedAt: now}}
	s.mu.Unlock()
	s.env.Record(Vendor, OpUpdate, strconv.FormatInt(t.ID, 10), req, nil)
	writeJSON(w, http.StatusOK, resp)
	if u.Status != "" && u.Status != prev {
		// The webhook outlives the request: its context without the cancel.
		go func(ctx context.Context) {
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if err := s.notify(ctx, t.ID, prev, u.Status); err != nil {
				s.env.Log.Warn("zendesk sandbox: webhook not delivered", "ticket", t.ID, "err", err)
			}
		}(context.WithoutCancel(r.Context()))
	}
}

// IdempotencyLookups counts the creates that carried an Idempotency-Key: hits (replayed, nothing
// created), misses (processed) and mismatches (400, other parameters).
func (s *Sim) IdempotencyLookups() Lookups {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lookups
}

// Tickets returns a copy of every ticket, oldest first.
func (s *Sim) Tickets() []Ticket {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Ticket, len(s.tickets))
	for i, t := range s.tickets {
		out[i] = *t
		out[i].Comments = append([]wire.Comment(nil), t.Comments...)
	}
	return out
}

// SetStatus changes the ticket's status (an agent working it in Zendesk) and delivers the
// ticket.status_changed webhook, returning the delivery error.
func (s *Sim) SetStatus(ctx context.Context, id int64, status string) error {
	if !statuses[status] {
		return fmt.Errorf("zendesk sandbox: status %q", status)
	}
	s.mu.Lock()
	t := s.byID[id]
	if t == nil {
		s.mu.Unlock()
		return fmt.Errorf("zendesk sandbox: no ticket %d", id)
	}
	prev := t.Status
	t.Status = status
	t.UpdatedAt = s.cfg.Now().UTC().Truncate(time.Second)
	s.mu.Unlock()
	return s.notify(ctx, id, prev, status)
}

func (s *Sim) notify(ctx context.Context, id int64, prev, cur string) error {
	s.mu.Lock()
	t := s.byID[id]
	s.events++
	evID := fmt.Sprintf("5f1c9d2e-0000-4000-8000-%012d", s.events)
	ev := wire.WebhookEvent{Type: wire.EventTicketStatusChanged, AccountID: 22129848, ID: evID,
		Time: s.cfg.Now().UTC(), Subject: fmt.Sprintf("zen:ticket:%d", id),
		Detail: wire.TicketDetail{ID: strconv.FormatInt(id, 10), ExternalID: t.ExternalID, Status: strings.ToUpper(cur), Subject: t.Subject},
		Event:  wire.StatusChange{Current: strings.ToUpper(cur), Previous: strings.ToUpper(prev)}}
	s.mu.Unlock()
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	return sim.Deliver(ctx, s.env.Client, s.env.Hook(s.cfg.WebhookPath), body, func(h http.Header) {
		if s.cfg.WebhookSecret != "" {
			ts := s.cfg.Now().UTC().Format(time.RFC3339) // signed afresh on every attempt
			h.Set(wire.HeaderTimestamp, ts)
			h.Set(wire.HeaderSignature, wire.WebhookSignature(s.cfg.WebhookSecret, ts, body))
		}
	})
}

// me answers GET /api/v2/users/me.json: the agent of the credentials, else the anonymous user.
func (s *Sim) me(w http.ResponseWriter, r *http.Request) {
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte(wire.BasicAuth(s.cfg.Email, s.cfg.APIToken))) != 1 {
		s.env.Record(Vendor, OpMe, "", nil, errors.New("anonymous: bad or missing API token credentials"))
		writeJSON(w, http.StatusOK, wire.UserResponse{User: wire.User{Name: "Anonymous user", Email: "invalid@example.com", Role: "end-user", Active: true}})
		return
	}
	id := int64(361234567890)
	s.env.Record(Vendor, OpMe, "", map[string]string{"email": s.cfg.Email}, nil)
	writeJSON(w, http.StatusOK, wire.UserResponse{User: wire.User{ID: &id, URL: "https://" + s.cfg.Subdomain + ".zendesk.com/api/v2/users/361234567890.json",
		Name: "omnibus", Email: s.cfg.Email, Role: "admin", Active: true}})
}

// groups answers GET /api/v2/groups.json: the account's groups in one page, by id.
func (s *Sim) groups(w http.ResponseWriter, _ *http.Request) {
	out := wire.GroupsResponse{Groups: []wire.Group{}}
	for name, id := range s.cfg.Groups {
		out.Groups = append(out.Groups, wire.Group{ID: id, Name: name})
	}
	slices.SortFunc(out.Groups, func(a, b wire.Group) int { return cmp.Compare(a.ID, b.ID) })
	out.Count = len(out.Groups)
	s.env.Record(Vendor, OpGroups, "", nil, nil)
	writeJSON(w, http.StatusOK, out)
}
