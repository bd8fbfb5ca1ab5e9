package api

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/omnibus-dev/omnibus/pkg/auth"
	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/pii"
	"github.com/omnibus-dev/omnibus/pkg/webhook"
	"github.com/omnibus-dev/omnibus/schemas"
)

// Dead letters on /ops: supervisors list, inspect, redrive and discard the messages in OMNI_DLQ
// (bus.DeadLetters); every redrive and discard is recorded as an omni.ops.dlq.action event.
const (
	TypeDLQAction    = schemas.TypeOpsDlqAction
	SubjectDLQAction = "omni.ops.dlq.action"
	// maxDLQAction is the most letters one redrive or discard takes (repeat for more).
	maxDLQAction = 1000
	// maxDLQShown is the most data bytes GET /api/ops/dlq/{seq} shows.
	maxDLQShown = 64 << 10
)

func (a *API) dlqRoutes() []Route {
	return []Route{
		{"GET", "/api/ops/dlq", false, a.listDeadLetters},
		{"GET", "/api/ops/dlq/{seq}", false, a.getDeadLetter},
		{"POST", "/api/ops/dlq/redrive", false, a.redriveDeadLetters},
		{"POST", "/api/ops/dlq/discard", false, a.discardDeadLetters},
	}
}

// DeadLetter is a dead letter as the API lists it.
type DeadLetter struct {
	Seq             uint64    `json:"seq"`
	Service         string    `json:"service"`
	Time            time.Time `json:"time"`
	Reason          string    `json:"reason"`
	OriginalSubject string    `json:"original_subject"`
	OriginalStream  string    `json:"original_stream,omitempty"`
	OriginalSeq     uint64    `json:"original_seq,omitempty"`
	Consumer        string    `json:"consumer,omitempty"`
	Deliveries      uint64    `json:"deliveries"`
	EventID         string    `json:"event_id,omitempty"`
	EventType       string    `json:"event_type,omitempty"`
}

// DeadLetterDetail is one dead letter with its message, personal data masked.
type DeadLetterDetail struct {
	DeadLetter
	Headers   map[string]string `json:"headers"`
	Data      string            `json:"data"`
	Truncated bool              `json:"truncated,omitempty"`
}

// DeadLetterCount is how many dead letters one service holds for one reason.
type DeadLetterCount struct {
	Service string `json:"service"`
	Reason  string `json:"reason"`
	Count   int    `json:"count"`
}

// DeadLetterAction is the body of POST /api/ops/dlq/redrive and /discard: the sequences, or a
// selection by service, reason (substring) and original subject (pattern); note is required
// for a discard.
type DeadLetterAction struct {
	Seqs    []uint64 `json:"seqs,omitempty"`
	Service string   `json:"service,omitempty"`
	Reason  string   `json:"reason,omitempty"`
	Subject string   `json:"subject,omitempty"`
	Note    string   `json:"note,omitempty"`
}

// toDeadLetter is d as the API shows it, personal data in the reason masked.
func toDeadLetter(d bus.DeadLetter) DeadLetter {
	return DeadLetter{Seq: d.Seq, Service: strings.TrimPrefix(d.Subject, "omni.dlq."), Time: d.Time, Reason: pii.Redact(d.Reason),
		OriginalSubject: d.OriginalSubject, OriginalStream: d.OriginalStream, OriginalSeq: d.OriginalSeq, Consumer: d.Consumer,
		Deliveries: d.Deliveries, EventID: d.EventID, EventType: d.EventType}
}

// dlqSupervisor answers 403 (or 503 without a bus) and reports false unless the caller may work
// dead letters.
func (a *API) dlqSupervisor(w http.ResponseWriter, r *http.Request) bool {
	if !principal(r).HasRole(auth.RoleSupervisor) {
		fail(w, http.StatusForbidden, "only supervisors work dead letters")
		return false
	}
	if a.DeadLetters == nil {
		fail(w, http.StatusServiceUnavailable, "this desk has no access to the dead-letter queue")
		return false
	}
	return true
}

func (a *API) listDeadLetters(w http.ResponseWriter, r *http.Request) {
	if !a.dlqSupervisor(w, r) {
		return
	}
	q := r.URL.Query()
	f := bus.DeadLetterFilter{Service: q.Get("service"), ReasonContains: q.Get("reason"), Subject: q.Get("subject"), Limit: 200}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxDLQAction {
			fail(w, http.StatusBadRequest, "limit must be 1-1000")
			return
		}
		f.Limit = n
	}
	if err := checkSelection(f.Service, f.Subject); err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx := r.Context()
	all, err := a.DeadLetters.ListDeadLetters(ctx, bus.DeadLetterFilter{})
	if err != nil {
		a.internal(w, r, err)
		return
	}
	counts := map[[2]string]int{}
	for _, d := range all {
		l := toDeadLetter(d)
		counts[[2]string{l.Service, shortReason(l.Reason)}]++
	}
	summary := make([]DeadLetterCount, 0, len(counts))
	for k, n := range counts {
		summary = append(summary, DeadLetterCount{Service: k[0], Reason: k[1], Count: n})
	}
	slices.SortFunc(summary, func(x, y DeadLetterCount) int {
		if x.Count != y.Count {
			return y.Count - x.Count
		}
		return strings.Compare(x.Service+"\x00"+x.Reason, y.Service+"\x00"+y.Reason)
	})
	letters, err := a.DeadLetters.ListDeadLetters(ctx, f)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	out := make([]DeadLetter, 0, len(letters))
	for _, d := range letters {
		out = append(out, toDeadLetter(d))
	}
	webhook.WriteJSON(w, http.StatusOK, map[string]any{"total": len(all), "summary": summary, "letters": out})
}

// shortReason is the reason as the summary groups it: its first 200 characters.
func shortReason(s string) string {
	if utf8.RuneCountInString(s) <= 200 {
		return s
	}
	return string([]rune(s)[:200]) + "…"
}

func checkSelection(service, subject string) error {
	if len(service) > 64 || strings.ContainsAny(service, ".*> ") {
		return errors.New("service must be a service name (no dots, wildcards or spaces)")
	}
	if len(subject) > 256 || strings.Contains(subject, " ") {
		return errors.New("subject must be a NATS subject or pattern")
	}
	return nil
}

func (a *API) getDeadLetter(w http.ResponseWriter, r *http.Request) {
	if !a.dlqSupervisor(w, r) {
		return
	}
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		fail(w, http.StatusBadRequest, "seq must be a positive integer (the letter's OMNI_DLQ sequence)")
		return
	}
	letters, err := a.DeadLetters.ListDeadLetters(r.Context(), bus.DeadLetterFilter{Seqs: []uint64{seq}, Limit: 1})
	if err != nil {
		a.internal(w, r, err)
		return
	}
	if len(letters) == 0 {
		fail(w, http.StatusNotFound, "no dead letter "+strconv.FormatUint(seq, 10))
		return
	}
	d := letters[0]
	out := DeadLetterDetail{DeadLetter: toDeadLetter(d), Headers: map[string]string{}}
	for k, v := range d.Header {
		if len(v) > 0 {
			out.Headers[k] = pii.Redact(strings.Join(v, ", "))
		}
	}
	data := d.Data
	if len(data) > maxDLQShown {
		data, out.Truncated = data[:maxDLQShown], true
	}
	out.Data = pii.Redact(strings.ToValidUTF8(string(data), "\uFFFD"))
	webhook.WriteJSON(w, http.StatusOK, out)
}

// selection reads and checks an action's body and returns the letters it names: 400 for a bad
// body, 404 when a named sequence is not in OMNI_DLQ or the selection matches nothing.
func (a *API) selection(w http.ResponseWriter, r *http.Request, needNote bool) (DeadLetterAction, []bus.DeadLetter, bool) {
	var req DeadLetterAction
	if !readJSON(w, r, &req) {
		return req, nil, false
	}
	req.Note = strings.TrimSpace(req.Note)
	byFilter := req.Service != "" || req.Reason != "" || req.Subject != ""
	switch {
	case len(req.Seqs) == 0 && !byFilter:
		fail(w, http.StatusBadRequest, "choose the letters: seqs, or service, reason or subject")
	case len(req.Seqs) > 0 && byFilter:
		fail(w, http.StatusBadRequest, "give seqs or a selection (service, reason, subject), not both")
	case len(req.Seqs) > maxDLQAction:
		fail(w, http.StatusBadRequest, "at most 1000 seqs per action")
	case slices.Contains(req.Seqs, 0):
		fail(w, http.StatusBadRequest, "seqs must be positive (OMNI_DLQ sequences)")
	case needNote && req.Note == "":
		fail(w, http.StatusBadRequest, "note is required: say why these letters are discarded")
	case utf8.RuneCountInString(req.Note) > 2000:
		fail(w, http.StatusBadRequest, "note must be at most 2000 characters")
	case len(req.Reason) > 512:
		fail(w, http.StatusBadRequest, "reason must be at most 512 characters")
	default:
		if err := checkSelection(req.Service, req.Subject); err != nil {
			fail(w, http.StatusBadRequest, err.Error())
			return req, nil, false
		}
		f := bus.DeadLetterFilter{Seqs: req.Seqs, Service: req.Service, ReasonContains: req.Reason, Subject: req.Subject, Limit: maxDLQAction}
		letters, err := a.DeadLetters.ListDeadLetters(r.Context(), f)
		if err != nil {
			a.internal(w, r, err)
			return req, nil, false
		}
		for _, s := range req.Seqs {
			if !slices.ContainsFunc(letters, func(d bus.DeadLetter) bool { return d.Seq == s }) {
				fail(w, http.StatusNotFound, "no dead letter "+strconv.FormatUint(s, 10))
				return req, nil, false
			}
		}
		if len(letters) == 0 {
			fail(w, http.StatusNotFound, "no dead letter matches the selection")
			return req, nil, false
		}
		return req, letters, true
	}
	return req, nil, false
}

func seqsOf(letters []bus.DeadLetter) []uint64 {
	out := make([]uint64, len(letters))
	for i, d := range letters {
		out[i] = d.Seq
	}
	return out
}

func (a *API) redriveDeadLetters(w http.ResponseWriter, r *http.Request) {
	if !a.dlqSupervisor(w, r) {
		return
	}
	req, letters, ok := a.selection(w, r, false)
	if !ok {
		return
	}
	n, err := a.DeadLetters.Redrive(r.Context(), bus.DeadLetterFilter{Seqs: seqsOf(letters)})
	if err != nil && n == 0 {
		a.Log.Warn("redrive", "seqs", seqsOf(letters), "err", err)
	}
	resp := map[string]any{"action": "redrive", "count": n, "seqs": seqsOf(letters)}
	if err != nil {
		resp["error"] = err.Error()
	}
	a.audit(w, r, "redrive", req, letters, n, err, resp)
}

func (a *API) discardDeadLetters(w http.ResponseWriter, r *http.Request) {
	if !a.dlqSupervisor(w, r) {
		return
	}
	req, letters, ok := a.selection(w, r, true)
	if !ok {
		return
	}
	gone, err := a.DeadLetters.DiscardDeadLetters(r.Context(), bus.DeadLetterFilter{Seqs: seqsOf(letters)})
	resp := map[string]any{"action": "discard", "count": len(gone), "seqs": seqsOf(gone)}
	if err != nil {
		resp["error"] = err.Error()
	}
	if len(gone) == 0 && err != nil {
		a.internal(w, r, err)
		return
	}
	a.audit(w, r, "discard", req, gone, len(gone), err, resp)
}

// audit publishes the omni.ops.dlq.action of an action that was taken and answers resp (with
// the audit event's id). The action is not undone when the record cannot be published: the
// answer says so, and the log has the record.
func (a *API) audit(w http.ResponseWriter, r *http.Request, action string, req DeadLetterAction, letters []bus.DeadLetter, n int, actErr error, resp map[string]any) {
	data := map[string]any{"action_id": uuid.NewString(), "action": action, "operator": principal(r).AgentID,
		"seqs": seqsOf(letters), "count": n, "at": time.Now().UTC()}
	var ids, services, reasons []string
	for _, d := range letters {
		if d.EventID != "" && !slices.Contains(ids, d.EventID) {
			ids = append(ids, d.EventID)
		}
		l := toDeadLetter(d)
		if !slices.Contains(services, l.Service) && len(services) < 256 {
			services = append(services, l.Service)
		}
		if s := string([]rune(l.Reason)[:min(utf8.RuneCountInString(l.Reason), 512)]); !slices.Contains(reasons, s) && len(reasons) < 256 {
			reasons = append(reasons, s)
		}
	}
	for k, v := range map[string][]string{"event_ids": ids, "services": services, "reasons": reasons} {
		if len(v) > 0 {
			data[k] = v
		}
	}
	if req.Note != "" {
		data["note"] = req.Note
	}
	if len(req.Seqs) == 0 {
		f := map[string]string{}
		for k, v := range map[string]string{"service": req.Service, "reason": req.Reason, "subject": req.Subject} {
			if v != "" {
				f[k] = v
			}
		}
		data["filter"] = f
	}
	if actErr != nil {
		msg := actErr.Error()
		if len(msg) > 4000 {
			msg = msg[:4000]
		}
		data["error"] = strings.ToValidUTF8(msg, "?")
	}
	e, err := event.New(TypeDLQAction, Source, data)
	if err == nil {
		err = a.Bus.Publish(r.Context(), SubjectDLQAction, e)
	}
	if err != nil {
		a.Log.Error("dead-letter action not recorded", "action", action, "operator", data["operator"], "seqs", data["seqs"], "err", err)
		resp["audit_error"] = "the action was taken but its audit record was not published: " + err.Error()
	} else {
		resp["audit_event_id"] = e.ID()
	}
	a.Log.Info("dead letters", "action", action, "operator", data["operator"], "count", n, "seqs", data["seqs"])
	webhook.WriteJSON(w, http.StatusOK, resp)
}
