package project

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/alert"
	"github.com/omnibus-dev/omnibus/pkg/bus"
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
