package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const (
	alertRules     = "../../deploy/prometheus/alerts.yml"
	alertRuleTests = "../../deploy/prometheus/alerts_test.yml"
	dashboard      = "../../deploy/grafana/omnibus.json"
)

// promtool returns the path of promtool (Debian's prometheus package; .ci/run installs it).
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (apt-get install --no-install-recommends prometheus); .ci/run installs it")
	}
	return p
}

// dashboardExprs are the PromQL queries of the Grafana dashboard's panels.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(dashboard)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", dashboard, err)
	}
	var out []string
	for _, p := range d.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			out = append(out, tg.Expr)
		}
	}
	return out
}

// TestPrometheusRules checks the alert rules with promtool and runs their unit tests (the 1 %
// vendor alert, the open breaker on a quiet route, lag, dead letters, a stuck outbox), and
// compiles every query of the Grafana dashboard (as recording rules, which promtool parses).
func TestPrometheusRules(t *testing.T) {
	t.Parallel()
	pt := promtool(t)
	run := func(args ...string) {
		t.Helper()
		out, err := exec.Command(pt, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("check", "rules", alertRules)
	run("test", "rules", alertRuleTests)
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, e := range dashboardExprs(t) {
		rules.WriteString("      - record: dashboard:panel_" + strconv.Itoa(i) + "\n        expr: " + strconv.Quote(e) + "\n")
	}
	f := filepath.Join(t.TempDir(), "dashboard-queries.yml")
	if err := os.WriteFile(f, []byte(rules.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	run("check", "rules", f)
}

var metricName = regexp.MustCompile(`\b(?:omnibus_(?:vendor|bus|unifier)|http_server)_[a-z_]+\b`) // not the labels omnibus_service, omnibus_outcome

// deployMetrics are the metric names the alert rules and the dashboard read, without the
// histogram suffixes; the second list are those that appear only once their event happened (a
// fallback served, a redelivery, a dead letter, a paused handler).
func deployMetrics(t *testing.T) (always, onEvent []string) {
	t.Helper()
	rules, err := os.ReadFile(alertRules)
	if err != nil {
		t.Fatal(err)
	}
	text := string(rules) + strings.Join(dashboardExprs(t), "\n")
	for _, m := range metricName.FindAllString(text, -1) {
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			m = strings.TrimSuffix(m, suffix)
		}
		switch m {
		case "omnibus_vendor_fallbacks_total", "omnibus_bus_redelivered_total", "omnibus_bus_deadlettered_total",
			"omnibus_bus_consumer_paused", "omnibus_bus_dlq_messages":
			onEvent = append(onEvent, m)
		default:
			always = append(always, m)
		}
	}
	slices.Sort(always)
	slices.Sort(onEvent)
	return slices.Compact(always), slices.Compact(onEvent)
}

// missingMetrics returns the names of metrics that /metrics (body) does not have.
func missingMetrics(body string, names []string) []string {
	var out []string
	for _, n := range names {
		if !strings.Contains(body, "\n"+n+"{") && !strings.Contains(body, "\n"+n+" ") && !strings.Contains(body, "\n"+n+"_bucket{") {
			out = append(out, n)
		}
	}
	return out
}
