package project

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/alert"
	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/canary"
	"github.com/omnibus-dev/omnibus/schemas"
	"github.com/omnibus-dev/omnibus/services/desk/internal/hub"
	"github.com/omnibus-dev/omnibus/services/desk/internal/store"
)

// Ops event types (schemas/omni.audit.call.recorded.json, omni.ops.alert.*.json).
const (
	TypeAuditCallRecorded = schemas.TypeAuditCallRecorded
	TypeOpsAlertRaised    = alert.TypeRaised
	TypeOpsAlertResolved  = alert.TypeResolved
)

// auditCall is the part of an audit record the ops page reads.
type auditCall struct {
	At        time.Time `json:"at"`
	Service   string    `json:"service"`
	Vendor    string    `json:"vendor"`
	Op        string    `json:"op"`
	Outcome   string    `json:"outcome"`
	Code      string    `json:"code"`
	Status    int       `json:"status"`
	LatencyMS float64   `json:"latency_ms"`
}

// breakerOf reads the breaker state an audit outcome reveals: a call refused by the breaker
// means it is open; any call that reached the vendor means it let calls through.
func breakerOf(outcome string) string {
	if outcome == "circuit_open" {
		return "open"
	}
	return "closed"
}

// HandleAudit records one audit record for the ops page.
func (p *Projector) HandleAudit(ctx context.Context, d bus.Delivery) error {
	e := d.Event
	if e.Type() != TypeAuditCallRecorded {
		return nil
	}
	var c auditCall
	if err := decode(e, &c); err != nil {
		return err
	}
	code := c.Code
	if code == "" && c.Status >= 400 {
		code = fmt.Sprintf("http_%d", c.Status)
	}
	if err := p.Store.ApplyVendorCall(ctx, store.VendorCall{EventID: e.ID(), Vendor: c.Vendor, Op: c.Op, Outcome: c.Outcome,
		Code: code, Breaker: breakerOf(c.Outcome), LatencyMS: c.LatencyMS, At: c.At}); err != nil {
		return err
	}
	p.Hub.Publish(hub.Notice{Type: e.Type()})
	return nil
}

// HandleOpsAlert records a raised ops alert (a banner) or resolves it.
func (p *Projector) HandleOpsAlert(ctx context.Context, d bus.Delivery) error {
	e := d.Event
	var a alert.Data
	switch e.Type() {
	case TypeOpsAlertRaised, TypeOpsAlertResolved:
		if err := decode(e, &a); err != nil {
			return err
		}
	default:
		return nil
	}
	route := a.Vendor + "." + a.Op
	detail, _ := json.Marshal(map[string]any{"service": a.Service, "vendor": a.Vendor, "op": a.Op, "kind": a.Kind,
		"ratio": a.Ratio, "threshold": a.Threshold, "calls": a.Calls, "failures": a.Failures, "window_seconds": a.WindowSeconds, "summary": a.Summary})
	if a.Kind == "dead_letters" { // no vendor route: the alert names the dead-letter subject
		route = a.Subject
		detail, _ = json.Marshal(map[string]any{"service": a.Service, "kind": a.Kind, "subject": a.Subject, "messages": a.Messages, "summary": a.Summary})
	}
	row := store.Alert{ID: "ops:" + a.AlertID, Kind: "ops", Severity: "critical", Title: a.Summary, Detail: detail, Route: route, At: a.RaisedAt}
	var err error
	if e.Type() == TypeOpsAlertResolved {
		at := e.Time()
		if a.ResolvedAt != nil {
			at = *a.ResolvedAt
		}
		if err = p.Store.ApplyAlert(ctx, row, nil); err == nil { // a resolve seen without its raise still leaves a record
			err = p.Store.ApplyAlert(ctx, row, &at)
		}
	} else {
		err = p.Store.ApplyAlert(ctx, row, nil)
	}
	if err != nil {
		return err
	}
	p.alertsChanged(ctx)
	return nil
}

// Canary rollout event types (schemas/omni.ops.canary.*.json, pkg/canary).
const (
	TypeCanaryStarted    = canary.TypeStarted
	TypeCanaryChanged    = canary.TypeChanged
	TypeCanaryRolledBack = canary.TypeRolledBack
	TypeCanaryEnded      = canary.TypeEnded
	TypeCanaryMeasured   = canary.TypeMeasured
)

// CanarySubjects are the subjects of the rollout events the desk shows.
var CanarySubjects = []string{canary.SubjectStarted, canary.SubjectChanged, canary.SubjectRolledBack, canary.SubjectEnded, canary.SubjectMeasured}

// HandleCanary records a canary rollout's state or per-variant windows for the ops page; a
// rollback also raises a banner.
func (p *Projector) HandleCanary(ctx context.Context, d bus.Delivery) error {
	e := d.Event
	var c struct {
		RolloutID string          `json:"rollout_id"`
		Target    string          `json:"target"`
		Service   string          `json:"service"`
		Candidate string          `json:"candidate"`
		Reason    string          `json:"reason"`
		Stats     json.RawMessage `json:"stats"`
	}
	switch e.Type() {
	case TypeCanaryStarted, TypeCanaryChanged, TypeCanaryRolledBack, TypeCanaryEnded, TypeCanaryMeasured:
		if err := decode(e, &c); err != nil {
			return err
		}
	default:
		return nil
	}
	var err error
	if e.Type() == TypeCanaryMeasured {
		err = p.Store.ApplyCanaryStats(ctx, c.Target, c.RolloutID, e.Data(), c.Stats, e.Time())
	} else {
		err = p.Store.ApplyCanaryState(ctx, c.Target, c.RolloutID, e.Data(), e.Time(), c.Stats)
	}
	if err == nil && (e.Type() == TypeCanaryStarted || e.Type() == TypeCanaryEnded) {
		var n int64 // the banner of an earlier rollback goes once the operator acted
		if n, err = p.Store.ResolveAlertsOfRoute(ctx, "canary."+c.Target, e.Time()); err == nil && n > 0 {
			p.alertsChanged(ctx)
		}
	}
	if err == nil && e.Type() == TypeCanaryRolledBack {
		detail, _ := json.Marshal(map[string]any{"service": c.Service, "kind": "canary", "target": c.Target, "candidate": c.Candidate, "summary": c.Reason})
		err = p.Store.ApplyAlert(ctx, store.Alert{ID: "canary:" + c.RolloutID, Kind: "ops", Severity: "critical",
			Title: fmt.Sprintf("canary %s rolled back from %s: %s", c.Target, c.Candidate, c.Reason), Detail: detail, Route: "canary." + c.Target, At: e.Time()}, nil)
		if err == nil {
			p.alertsChanged(ctx)
		}
	}
	if err != nil {
		return err
	}
	p.Hub.Publish(hub.Notice{Type: e.Type()})
	return nil
}
