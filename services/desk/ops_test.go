package desk_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/omnibus-dev/omnibus/pkg/browsertest"
	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/schema"
	"github.com/omnibus-dev/omnibus/services/desk"
	"github.com/omnibus-dev/omnibus/services/desk/internal/store"
)

// publishCalls publishes audit records of the logistics connector: n calls to sfexpress.route_query
// with the given outcomes in turn.
func publishCalls(t *testing.T, b *bustest.Bundle, n int, outcomes ...string) {
	t.Helper()
	now := time.Now().UTC()
	for i := range n {
		out := outcomes[i%len(outcomes)]
		rec := map[string]any{"at": now.Add(-time.Duration(n-i) * 20 * time.Second), "service": "logistics", "vendor": "sfexpress", "op": "route_query",
			"outcome": out, "latency_ms": float64(40 + i%10*10), "attempts": 1, "idempotent": true}
		switch out {
		case "timeout":
			rec["latency_ms"], rec["attempts"], rec["error"] = 900.0, 3, "deadline exceeded"
		case "permanent":
			rec["status"], rec["code"], rec["error"] = 400, "A1001", "bad waybill"
		case "circuit_open":
			rec["latency_ms"], rec["attempts"], rec["fallback"] = 0.1, 0, "manual"
		}
		e, err := event.New("omni.audit.call.recorded", "/connectors/logistics", rec)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Client.Publish(context.Background(), "omni.audit.logistics", e); err != nil {
			t.Fatal(err)
		}
	}
}

func opsAlert(t *testing.T, b *bustest.Bundle, typ, id string) {
	t.Helper()
	now := time.Now().UTC()
	data := map[string]any{"alert_id": id, "kind": "vendor_failure_ratio", "service": "logistics", "vendor": "sfexpress", "op": "route_query",
		"ratio": 0.25, "threshold": 0.01, "calls": 40, "failures": 10, "window_seconds": 300, "raised_at": now.Add(-time.Minute),
		"summary": "sfexpress.route_query failing: 25% of 40 calls over 5m (threshold 1%)"}
	if typ == "omni.ops.alert.resolved" {
		data["resolved_at"], data["ratio"], data["threshold"], data["summary"] = now, 0.0, 0.005, "sfexpress.route_query recovered"
		delete(data, "failures_by_outcome")
	} else {
		data["failures_by_outcome"] = map[string]int{"timeout": 6, "circuit_open": 4}
	}
	e, err := event.New(typ, "/connectors/logistics", data)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Client.Publish(context.Background(), typ, e); err != nil {
		t.Fatal(err)
	}
}

func TestOpsAndAlerts(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(quiet()))
	d := startDesk(t, b, map[string]string{"DESK_ASSIGN": "false"})
	publishCalls(t, b, 40, "ok", "ok", "ok", "timeout", "ok", "permanent", "ok", "circuit_open")
	var ops struct {
		Routes []store.RouteStats
		Alerts []store.Alert
	}
	bustest.WaitFor(t, 15*time.Second, "40 calls on the ops page", func() bool {
		d.call(t, d.token, "GET", "/api/ops/routes?window=1h", nil, &ops)
		return len(ops.Routes) == 1 && ops.Routes[0].Calls == 40
	})
	r := ops.Routes[0]
	if r.Route != "sfexpress.route_query" || r.OK != 25 || r.SuccessRate != 25.0/40 || r.Codes["timeout"] != 5 || r.Codes["A1001"] != 5 ||
		r.Codes["circuit_open"] != 5 || r.Breaker != "open" || r.P99MS < 800 || r.P50MS < 40 || r.P50MS > 100 || len(r.Series) == 0 {
		t.Fatalf("route stats %+v", r)
	}
	if code := d.call(t, d.token, "GET", "/api/ops/routes?window=1s", nil, nil); code != 400 {
		t.Errorf("too small a window: %d", code)
	}

	id := uuid.NewString()
	opsAlert(t, b, "omni.ops.alert.raised", id)
	var alerts struct{ Alerts []store.Alert }
	bustest.WaitFor(t, 15*time.Second, "the ops alert", func() bool {
		d.call(t, d.token, "GET", "/api/alerts", nil, &alerts)
		return len(alerts.Alerts) == 1
	})
	if a := alerts.Alerts[0]; a.Kind != "ops" || a.Route != "sfexpress.route_query" || !strings.Contains(a.Title, "25%") {
		t.Fatalf("alert %+v", a)
	}
	opsAlert(t, b, "omni.ops.alert.resolved", id)
	bustest.WaitFor(t, 15*time.Second, "the ops alert resolved", func() bool {
		d.call(t, d.token, "GET", "/api/alerts", nil, &alerts)
		return len(alerts.Alerts) == 0
	})
	d.call(t, d.token, "GET", "/api/alerts?active=false", nil, &alerts)
	if len(alerts.Alerts) != 1 || alerts.Alerts[0].ResolvedAt == nil {
		t.Fatalf("resolved alert %+v", alerts.Alerts)
	}

	// A dead_letters alert (the audit service's) names its dead-letter subject instead of a route.
	dlq := map[string]any{"alert_id": uuid.NewString(), "kind": "dead_letters", "service": "crm", "subject": "omni.dlq.crm", "messages": 2,
		"raised_at": time.Now().UTC(), "summary": "omni.dlq.crm holds 2 dead letters: see why with `omnibus dlq list --service crm`"}
	for _, typ := range []string{"omni.ops.alert.raised", "omni.ops.alert.resolved"} {
		if typ == "omni.ops.alert.resolved" {
			dlq["messages"], dlq["resolved_at"], dlq["summary"] = 0, time.Now().UTC(), "omni.dlq.crm is empty again"
		}
		e, err := event.New(typ, "/services/audit", dlq)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Client.Publish(context.Background(), typ, e); err != nil {
			t.Fatal(err)
		}
		if typ == "omni.ops.alert.raised" {
			bustest.WaitFor(t, 15*time.Second, "the dead_letters alert", func() bool {
				d.call(t, d.token, "GET", "/api/alerts", nil, &alerts)
				return len(alerts.Alerts) == 1
			})
			if a := alerts.Alerts[0]; a.Kind != "ops" || a.Route != "omni.dlq.crm" || !strings.Contains(a.Title, "2 dead letters") {
				t.Fatalf("dead_letters alert %+v", a)
			}
		}
	}
	bustest.WaitFor(t, 15*time.Second, "the dead_letters alert resolved", func() bool {
		d.call(t, d.token, "GET", "/api/alerts", nil, &alerts)
		return len(alerts.Alerts) == 0
	})

	// Negative sentiment from an AI result raises a banner on the conversation.
	w := newWorld(t, b)
	w.opened("wechatkf")
	w.inbound("wechatkf", "wechat_openid", "oWx-1", "你们太慢了！", w.t0.Add(time.Second), "wechatkf")
	w.toolResult("ai", "suggest", "completed", "c1", map[string]any{"provider": "bailian", "suggestions": []any{map[string]any{"text": "非常抱歉"}},
		"sentiment": map[string]any{"label": "negative", "score": -0.8}}, w.t0.Add(2*time.Second))
	bustest.WaitFor(t, 15*time.Second, "the sentiment alert", func() bool { // a supervisor sees every conversation's
		d.call(t, d.super, "GET", "/api/alerts", nil, &alerts)
		return len(alerts.Alerts) == 1 && alerts.Alerts[0].Kind == "sentiment"
	})
	var c store.Conversation
	d.call(t, d.token, "GET", "/api/conversations/"+w.conv, nil, &c)
	if c.Sentiment != "negative" || alerts.Alerts[0].ConversationID != w.conv {
		t.Fatalf("conversation %+v alert %+v", c, alerts.Alerts[0])
	}
	w.toolResult("ai", "suggest", "completed", "c2", map[string]any{"provider": "bailian", "suggestions": []any{},
		"sentiment": map[string]any{"label": "neutral"}}, w.t0.Add(3*time.Second))
	bustest.WaitFor(t, 15*time.Second, "the sentiment alert resolved", func() bool {
		d.call(t, d.super, "GET", "/api/alerts", nil, &alerts)
		return len(alerts.Alerts) == 0
	})
}

// TestBrowserOpsPage renders the ops page over real audit records: a row per route with its
// success rate, latencies, error codes, breaker state and chart, and the alert banner.
func TestBrowserOpsPage(t *testing.T) {
	t.Parallel()
	br := browsertest.Start(t, "the desk's ops page test", "desk-e2e")
	b := bustest.New(t, bus.WithLogger(quiet()))
	d := startDesk(t, b, map[string]string{"DESK_DEV_LOGIN": "true", "DESK_ASSIGN": "false"})
	publishCalls(t, b, 60, "ok", "ok", "ok", "ok", "timeout", "ok", "ok", "permanent", "ok", "ok", "ok", "circuit_open")
	opsAlert(t, b, "omni.ops.alert.raised", uuid.NewString())
	// The page renders what the store holds when it loads: wait until it holds every call and
	// the alert (a load one audit record early showed 59 calls).
	bustest.WaitFor(t, 15*time.Second, "60 calls and the alert stored", func() bool {
		routes, err := d.store.RouteStats(context.Background(), time.Now().Add(-time.Hour), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		alerts, err := d.store.Alerts(context.Background(), true, 10)
		if err != nil {
			t.Fatal(err)
		}
		return len(routes) == 1 && routes[0].Calls == 60 && len(alerts) == 1
	})
	bctx := br.Ctx
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()
	row := chromedp.CSS(`tr[data-route="sfexpress.route_query"]`)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800),
		chromedp.Navigate(d.url+"/desk/dev/login?agent=supervisor-wang&role=supervisor&next=%2Fops%3Flang%3Den"),
		chromedp.WaitVisible(row), chromedp.WaitVisible(chromedp.CSS(`tr[data-route="sfexpress.route_query"] svg.chart rect.err`)),
		chromedp.WaitVisible(chromedp.CSS("#alerts .banner-error"))); err != nil {
		br.Shot(t, "ops-failed")
		t.Fatal(err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(row))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"sfexpress", "60", "75.00%", "A1001 × 5", "timeout × 5", "circuit_open × 5", "open"} {
		if !strings.Contains(text, want) {
			t.Errorf("ops row lacks %q: %q", want, text)
		}
	}
	// The banner speaks the page's language, built from the alert's figures (the server's
	// summary is English), in English and then in Chinese.
	for _, lang := range []struct{ code, want string }{
		{"en", "sfexpress route_query: 10 of 40 calls failed in the last 5 min (25% ≥ 1%)"},
		{"zh", "sfexpress route_query：最近 5 分钟内 40 次调用失败 10 次（25% ≥ 1%）"},
	} {
		if lang.code == "zh" {
			if err := chromedp.Do(ctx, chromedp.Navigate(d.url+"/ops?lang=zh"), chromedp.WaitVisible(chromedp.CSS("#alerts .banner-error"))); err != nil {
				t.Fatal(err)
			}
		}
		banner, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#alerts .banner-error")))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(banner, lang.want) {
			t.Errorf("%s banner %q, want %q", lang.code, banner, lang.want)
		}
	}
	br.Shot(t, "07-ops")
}

// TestServiceRoutes: every type the desk declares it publishes or consumes has a schema and an
// AsyncAPI entry.
func TestServiceRoutes(t *testing.T) {
	t.Parallel()
	reg := schema.Default()
	documented, err := schema.AsyncAPITypes()
	if err != nil {
		t.Fatal(err)
	}
	s := desk.Service()
	for _, r := range append(slices.Clone(s.Publishes), s.Subscribes...) {
		if !reg.Has(r.Type) {
			t.Errorf("%s on %s has no schema", r.Type, r.Subject)
		}
		if !slices.Contains(documented, r.Type) {
			t.Errorf("%s on %s is not in asyncapi.yaml", r.Type, r.Subject)
		}
	}
	if !s.NeedsDB || s.Name != "desk" {
		t.Fatalf("service %+v", s)
	}
}
