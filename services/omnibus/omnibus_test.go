package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/config"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/schema"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/services/omnibus/allinone"
	"github.com/omnibus-dev/omnibus/services/omnibus/internal/demo"
	"github.com/omnibus-dev/omnibus/services/sandbox"
)

func allServices() []service.Service {
	return append(append(services(), simulated()...), demo.Service(demo.Options{}))
}

// Every type a service publishes or consumes has a JSON Schema and an AsyncAPI entry.
func TestEveryTypeHasSchemaAndAsyncAPI(t *testing.T) {
	t.Parallel()
	documented, err := schema.AsyncAPITypes()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range allServices() {
		if len(s.Publishes)+len(s.Subscribes) == 0 && !s.NoBus {
			t.Errorf("service %s declares no routes", s.Name)
		}
		for _, r := range append(slices.Clone(s.Publishes), s.Subscribes...) {
			if !schema.Default().Has(r.Type) {
				t.Errorf("service %s uses %s on %s, which has no JSON Schema in schemas/", s.Name, r.Type, r.Subject)
			}
			if !slices.Contains(documented, r.Type) {
				t.Errorf("service %s uses %s, which has no message in schemas/asyncapi.yaml", s.Name, r.Type)
			}
		}
	}
}

func TestAllInOne(t *testing.T) {
	t.Parallel()
	cfg := allinone.Config{
		HTTPAddr: "127.0.0.1:0", NATSAddr: "127.0.0.1:0", NATSSync: "always", DataDir: t.TempDir(),
		Simulate: true, SimInterval: 20 * time.Millisecond, LogLevel: "warn", ShutdownTimeout: 10 * time.Second,
	}
	// The demo's secrets, generated for this data dir as `omnibus` does: the simulated vendors
	// and the connectors must agree on them for the traffic below to flow.
	secrets, err := allinone.DemoSecrets(cfg.DataDir, sandbox.NewSecrets)
	if err != nil {
		t.Fatal(err)
	}
	env := localEnv(cfg.DataDir)
	env["VOICE_SIP_LISTEN"] = "127.0.0.1:0" // tests run side by side: no fixed port
	log := violationLog(t)
	ctx, cancel := context.WithCancel(context.Background())
	baseCh := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- allinone.Run(ctx, cfg, func(base string) []service.Service {
			maps.Copy(env, simulationEnv(base, secrets))
			return append(append(services(), simulated()...), demo.Service(demo.Options{Base: base, Secret: secrets["EXAMPLE_SECRET"], Interval: cfg.SimInterval}))
		}, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, log, func(b string) { baseCh <- b })
	}()
	var base string
	select {
	case base = <-baseCh:
	case err := <-done:
		t.Fatalf("all-in-one exited: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("all-in-one not ready after 20s")
	}
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	// Ready means every service serves: readiness includes them, and the routes they mount
	// (the desk at /, the audit API, the sandbox admin) answer at once, not 404.
	if code, body := get("/readyz"); code != 200 || !strings.Contains(body, `"services"`) {
		t.Fatalf("/readyz when the all-in-one said ready: %d %s", code, body)
	}
	for _, path := range []string{"/sandbox/_admin/routes", "/api/audit", "/"} {
		if code, _ := get(path); code == http.StatusNotFound {
			t.Fatalf("%s: 404 when the all-in-one said ready", path)
		}
	}
	// The audit API returns what customers wrote: a token of the desk's (here development)
	// issuer with the auditor or supervisor role is required.
	if code, body := get("/api/audit"); code != http.StatusUnauthorized {
		t.Fatalf("anonymous /api/audit: %d %s, want 401", code, body)
	}
	auditGet := func(role string) (int, string, string) {
		resp, err := http.PostForm(base+"/desk/dev/login", url.Values{"agent": {"supervisor-wang"}, "role": {role}, "format": {"token"}})
		if err != nil {
			t.Fatal(err)
		}
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		err = json.NewDecoder(resp.Body).Decode(&tok)
		resp.Body.Close()
		if err != nil || tok.AccessToken == "" {
			t.Fatalf("dev login as %s: %s %v", role, resp.Status, err)
		}
		req, _ := http.NewRequest(http.MethodGet, base+"/api/audit?limit=1", nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), tok.AccessToken
	}
	for role, want := range map[string]int{"supervisor": http.StatusOK, "auditor": http.StatusOK, "agent": http.StatusUnauthorized} {
		if code, body, _ := auditGet(role); code != want {
			t.Fatalf("/api/audit with a dev-login %s token: %d %s, want %d", role, code, body, want)
		}
	}
	// Malformed requests to every public entry are refused without library internals.
	_, _, supervisor := auditGet("supervisor")
	checkNoInternals(t, base, secrets, supervisor)
	// Simulated customers write → connector publishes → auto-reply → connector sends → vendor.
	bustest.WaitFor(t, 15*time.Second, "3 replies delivered by the simulated vendor", func() bool {
		_, body := get("/sandbox/example/sent")
		var sent []map[string]any
		_ = json.Unmarshal([]byte(body), &sent)
		return len(sent) >= 3
	})
	// The unifier merged them into conversations and emitted desk events.
	bustest.WaitFor(t, 30*time.Second, "desk events from the unifier", func() bool {
		_, body := get("/metrics")
		return strings.Contains(body, `cloudevents_event_type="omni.desk.message.added"`)
	})
	// Simulating, the sandbox configures every connector: none is disabled.
	if code, body := get("/readyz"); code != 200 || !strings.Contains(body, `"ready":true`) || !strings.Contains(body, "postgres") ||
		!strings.Contains(body, `"disabled":[]`) {
		t.Fatalf("/readyz: %d %s", code, body)
	}
	if _, body := get("/metrics"); !strings.Contains(body, "omnibus_bus_published_total") || !strings.Contains(body, "omnibus_bus_acked_total") {
		t.Fatal("/metrics lacks the bus metrics")
	}
	// Every metric the shipped alert rules and dashboard read exists under that name (those
	// counting rare events once they happened).
	always, _ := deployMetrics(t)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		_, body := get("/metrics")
		missing := missingMetrics(body, always)
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks what deploy/ (alert rules, dashboard) reads: %v", missing)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("all-in-one stopped with %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("all-in-one did not stop within 20s")
	}
}

func TestDLQCommand(t *testing.T) {
	b := bustest.New(t)
	t.Setenv("NATS_URL", b.Server.ClientURL())
	ctx := context.Background()
	e, err := event.New("omni.channel.message.received", "/test", map[string]any{
		"channel": "example", "channel_message_id": "m1", "from": map[string]string{"kind": "phone", "value": "+8613800138000"},
		"message": map[string]any{"type": "text", "text": "hi"}, "sent_at": "2026-11-27T08:00:00Z",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Client.Publish(ctx, "omni.in.example.message", e); err != nil {
		t.Fatal(err)
	}
	var handled atomic.Int32
	sub, err := b.Client.Subscribe(ctx, bus.ConsumerConfig{Service: "unifier", Stream: bus.StreamIn}, func(context.Context, bus.Delivery) error {
		if handled.Add(1) == 1 {
			return bus.Permanent(errors.New("customer store unavailable"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	bustest.WaitFor(t, 5*time.Second, "dead letter", func() bool { return b.StoredCount(t, bus.StreamDLQ, ">") == 1 })

	var out, errOut bytes.Buffer
	if code := run([]string{"dlq", "list"}, &out, &errOut); code != 0 {
		t.Fatalf("dlq list exited %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "customer store unavailable") || !strings.Contains(out.String(), e.ID()) {
		t.Fatalf("dlq list output:\n%s", out.String())
	}
	out.Reset()
	if code := run([]string{"dlq", "redrive"}, &out, &errOut); code == 0 {
		t.Fatal("redrive without a selector must refuse")
	}
	if code := run([]string{"dlq", "redrive", "--reason", "store unavailable"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "redriven: 1") {
		t.Fatalf("redrive: %d %s %s", code, out.String(), errOut.String())
	}
	bustest.WaitFor(t, 5*time.Second, "redriven event handled", func() bool { return handled.Load() == 2 })
	out.Reset()
	if code := run([]string{"dlq", "list", "--json"}, &out, &errOut); code != 0 || out.Len() != 0 {
		t.Fatalf("after redrive: %d %q", code, out.String())
	}
	// --server wins over NATS_URL, as the nats CLI's does.
	errOut.Reset()
	if code := run([]string{"dlq", "list", "--server", "nats://127.0.0.1:1"}, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "nats://127.0.0.1:1") {
		t.Fatalf("dlq list --server to nowhere: %d %s", code, errOut.String())
	}
	errOut.Reset()
	if code := run([]string{"replay", "--stream", "in", "--server", b.Server.ClientURL(), "--limit", "1"}, &out, &errOut); code != 0 {
		t.Fatalf("replay --server: %d %s", code, errOut.String())
	}
}

func TestConfigCommand(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if code := run([]string{"config"}, &out, io.Discard); code != 0 {
		t.Fatal(code)
	}
	for _, v := range []string{"OMNIBUS_HTTP_ADDR", "OMNIBUS_NATS_SYNC", "DATABASE_URL", "EXAMPLE_SECRET", "UNIFIER_IDLE_TIMEOUT"} {
		if !strings.Contains(out.String(), v) {
			t.Errorf("omnibus config lacks %s", v)
		}
	}
	// docs/configuration.md holds `omnibus config --markdown` between its markers, and so lists
	// every variable the code reads.
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- config:begin -->\n", "<!-- config:end -->"
	_, block, ok := strings.Cut(string(doc), begin)
	block, _, ok2 := strings.Cut(block, end)
	if !ok || !ok2 {
		t.Fatalf("docs/configuration.md lacks the %q ... %q markers", begin, end)
	}
	var md bytes.Buffer
	if code := run([]string{"config", "--markdown"}, &md, io.Discard); code != 0 {
		t.Fatal(code)
	}
	if block != md.String() {
		t.Errorf("docs/configuration.md is out of date: paste `go run ./services/omnibus config --markdown` between its config markers")
	}
	vars := []any{&allinone.Config{}, &service.Base{}}
	for _, s := range allServices() {
		if s.Config != nil {
			vars = append(vars, s.Config)
		}
	}
	for _, cfg := range vars {
		for _, f := range config.Describe(cfg) {
			if !strings.Contains(block, "`"+f.Env+"`") {
				t.Errorf("docs/configuration.md lacks %s", f.Env)
			}
		}
	}
}

func TestDeskCommands(t *testing.T) {
	b := bustest.New(t)
	t.Setenv("NATS_URL", b.Server.ClientURL())
	var out, errOut bytes.Buffer
	if code := run([]string{"unmerge"}, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "--merge-id") {
		t.Fatalf("unmerge without an id: %d %s", code, errOut.String())
	}
	for _, args := range [][]string{
		{"unmerge", "--merge-id", "0b6f2a8e-57a4-5f8c-9b41-3f1d2c1e6a10", "--reason", "wrong phone"},
		{"close", "--conversation", "6a1f0c3e-1b2d-5e4f-8a9b-0c1d2e3f4a5b"},
		{"reopen", "--conversation", "6a1f0c3e-1b2d-5e4f-8a9b-0c1d2e3f4a5b"},
	} {
		if code := run(args, &out, &errOut); code != 0 {
			t.Fatalf("%v: %d %s", args, code, errOut.String())
		}
	}
	if n := b.StoredCount(t, bus.StreamIn, "omni.in.desk.>"); n != 3 {
		t.Fatalf("desk commands on OMNI_IN: %d, want 3", n)
	}
	types := map[string]bool{}
	for _, e := range b.Events(t, bus.StreamIn, "omni.in.desk.>") {
		types[e.Type()] = true
	}
	for _, want := range []string{"omni.customer.unmerge.requested", "omni.conversation.close.requested", "omni.conversation.reopen.requested"} {
		if !types[want] {
			t.Errorf("no %s published", want)
		}
	}
}

// TestCanaryCommand: `omnibus canary` publishes the operator's rollout command where the SMS
// connector consumes it; a command without a plan is refused before anything is sent.
func TestCanaryCommand(t *testing.T) {
	b := bustest.New(t)
	t.Setenv("NATS_URL", b.Server.ClientURL())
	var out, errOut bytes.Buffer
	if code := run([]string{"canary", "--target", "sms"}, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "--plan") {
		t.Fatalf("canary without a plan: %d %s", code, errOut.String())
	}
	if code := run([]string{"canary", "--target", "sms", "--plan", "tencent:10%", "--by", "sup-1", "--reason", "pilot"}, &out, &errOut); code != 0 {
		t.Fatalf("canary: %d %s", code, errOut.String())
	}
	evs := b.Events(t, bus.StreamOps, "omni.ops.canary.set.sms")
	if len(evs) != 1 || evs[0].Type() != "omni.ops.canary.set.requested" ||
		string(evs[0].Data()) != `{"target":"sms","plan":"tencent:10%","by":"sup-1","reason":"pilot"}` {
		t.Fatalf("canary commands %v", evs)
	}
}
