package faultload

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnibus-dev/omnibus/pkg/alert"
	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/schemas"
)

// The tool route the suite fails and heals: the logistics connector's SF Express route query.
// Nothing else calls it (the unifier's CRM lookups go to Salesforce), so it is a quiet route.
const (
	RouteService  = "logistics"                        // the service whose resilience.Registry raises the alert
	RouteVendor   = "sfexpress"                        // the alert's vendor
	RouteOp       = "route_query"                      // the alert's op
	RouteFaultKey = "sfexpress EXP_RECE_SEARCH_ROUTES" // the sandbox's route key
	RouteFailCode = "A1099"                            // SF's system error: retryable
	typeRouteReq  = schemas.TypeToolLogisticsRouteRequested
	subjRouteRes  = "omni.tool.logistics.route.*" // .completed and .failed
)

// RequestRoute asks the logistics connector, over the bus, to track one SF Express waybill for
// a conversation (as the desk's track-parcel button does) and returns the request's event id.
// The result comes back on omni.tool.logistics.route.{completed,failed}; the unifier puts it on
// the conversation's timeline, so the conversation must exist.
func RequestRoute(ctx context.Context, pub bus.Publisher, conversationID, customerID, waybill string) (string, error) {
	e, err := event.New(typeRouteReq, "/faultload", map[string]any{
		"conversation_id": conversationID, "customer_id": customerID, "tracking_number": waybill, "carrier": "sf_express",
	})
	if err != nil {
		return "", err
	}
	if err := pub.Publish(ctx, typeRouteReq, e); err != nil {
		return "", err
	}
	return e.ID(), nil
}

// RouteOutcomes returns the outcome ("completed" or "failed") of each answered request among
// ids (request event ids), read from OMNI_TOOL by the answers' correlationid.
func RouteOutcomes(ctx context.Context, js jetstream.JetStream, ids map[string]bool) (map[string]string, error) {
	out := map[string]string{}
	err := Scan(ctx, js, bus.StreamTool, subjRouteRes, true, func(m jetstream.Msg) {
		if id := Header(m.Headers(), "ce-correlationid"); ids[id] {
			out[id] = m.Subject()[strings.LastIndexByte(m.Subject(), '.')+1:]
		}
	})
	return out, err
}

// Alert is one omni.ops.alert.raised or .resolved event.
type Alert struct {
	Type     string    // alert.TypeRaised or alert.TypeResolved
	Stored   time.Time // when OMNI_OPS stored it
	AlertID  string    `json:"alert_id"`
	Kind     string    `json:"kind"`
	Service  string    `json:"service"`
	Vendor   string    `json:"vendor"`
	Op       string    `json:"op"`
	Subject  string    `json:"subject"` // dead_letters: omni.dlq.<service>
	Calls    int       `json:"calls"`
	Failures int       `json:"failures"`
	Summary  string    `json:"summary"`
}

// Raised reports whether a is a raise.
func (a Alert) Raised() bool { return a.Type == alert.TypeRaised }

// OnRoute reports whether a is the vendor_failure_ratio alert of the suite's route.
func (a Alert) OnRoute() bool {
	return a.Kind == alert.KindVendorFailureRatio && a.Service == RouteService && a.Vendor == RouteVendor && a.Op == RouteOp
}

// Alerts reads every alert in OMNI_OPS, oldest first.
func Alerts(ctx context.Context, js jetstream.JetStream) ([]Alert, error) {
	var out []Alert
	err := Scan(ctx, js, bus.StreamOps, "omni.ops.alert.>", false, func(m jetstream.Msg) {
		var a Alert
		if json.Unmarshal(m.Data(), &a) != nil {
			return
		}
		a.Type = Header(m.Headers(), "ce-type")
		if meta, err := m.Metadata(); err == nil {
			a.Stored = meta.Timestamp
		}
		out = append(out, a)
	})
	return out, err
}

// SetFault sets (or, with a zero fault, clears) the sandbox's fault on route key, e.g.
// {"error_ratio": 1, "code": "A1099"}, through its admin API.
func SetFault(ctx context.Context, base, key string, fault map[string]any) error {
	method, body := http.MethodDelete, ""
	if len(fault) > 0 {
		b, err := json.Marshal(fault)
		if err != nil {
			return err
		}
		method, body = http.MethodPut, string(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(base, "/")+"/sandbox/_admin/faults/"+url.PathEscape(key),
		strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("sandbox fault %q: %w", key, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("sandbox fault %q: %s", key, resp.Status)
	}
	return nil
}
