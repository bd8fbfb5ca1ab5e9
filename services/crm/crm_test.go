package crm_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/connector/connectortest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/pii"
	"github.com/omnibus-dev/omnibus/pkg/schema"
	"github.com/omnibus-dev/omnibus/pkg/service/servicetest"
	"github.com/omnibus-dev/omnibus/services/crm"
	sfsim "github.com/omnibus-dev/omnibus/services/sandbox/salesforce"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

const (
	clientID     = "3MVG9sim.crm"
	clientSecret = "3F1B0C9E5D7A2B4C"
	customers    = 30
	seed         = 11
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(logOut(), nil)) }

type testBundle struct {
	bus  *bustest.Bundle
	mu   sync.Mutex
	seen map[string]event.Event // answers by correlation id, as published
	env  *sim.Env
	sf   *sfsim.Sim
	pop  []sim.Customer
	now  *atomic.Int64 // the simulator's clock
	stop func()
}

// setup runs the sandbox's Salesforce in-process and the connector against it on an embedded
// JetStream, with env overriding the connector's configuration.
func setup(t *testing.T, env map[string]string) *testBundle {
	t.Helper()
	return setupOrg(t, env)
}

// setupOrg is setup against an org without the hidden Contact fields.
func setupOrg(t *testing.T, env map[string]string, hidden ...string) *testBundle {
	t.Helper()
	tb := &testBundle{bus: bustest.New(t, bus.WithLogger(quiet())), pop: sim.Population(customers, seed), now: &atomic.Int64{},
		seen: map[string]event.Event{}}
	// Answers are read off the subjects as they are published (no polling of the stream).
	sub, err := tb.bus.Conn.Subscribe("omni.tool.crm.lookup.*", func(m *nats.Msg) {
		if e, err := event.Decode(m.Header, m.Data); err == nil && e.Type() != crm.TypeRequested {
			tb.mu.Lock()
			tb.seen[event.CorrelationID(e)] = e
			tb.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	tb.now.Store(time.Now().UnixNano())
	var vars map[string]string
	tb.env, tb.sf, vars = salesforce(t, tb.now, hidden...)
	for k, v := range env {
		vars[k] = v
	}
	tb.stop = servicetest.Run(t, crm.Service(), tb.bus.Client, nil, vars)
	return tb
}

// salesforce runs the sandbox's Salesforce on loopback, on the clock now, and returns the
// connector's environment pointing at it.
// hidden are Contact fields the simulated org does not have.
func salesforce(t *testing.T, now *atomic.Int64, hidden ...string) (*sim.Env, *sfsim.Sim, map[string]string) {
	t.Helper()
	mux := http.NewServeMux()
	env := sim.NewEnv(mux, "http://127.0.0.1:1/hooks", nil, 0, quiet())
	sf, err := sfsim.New(env, sfsim.Config{ClientID: clientID, ClientSecret: clientSecret, Customers: customers, Seed: seed,
		SessionTTL: 2 * time.Hour, Now: func() time.Time { return time.Unix(0, now.Load()) }, HiddenFields: hidden})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return env, sf, map[string]string{
		"SALESFORCE_LOGIN_URL": srv.URL + "/sandbox/salesforce", "SALESFORCE_CLIENT_ID": clientID,
		"SALESFORCE_CLIENT_SECRET": clientSecret, "CRM_LOOKUP_BUDGET": "2s",
	}
}

// TestConformance runs the tool connectors' conformance suite against the sandbox.
func TestConformance(t *testing.T) {
	t.Parallel()
	pop := sim.Population(customers, seed)
	connectortest.RunTool(t, connectortest.ToolHarness{
		Spec: crm.Spec, Service: crm.Service(),
		Setup: func(t *testing.T) map[string]string {
			now := &atomic.Int64{}
			now.Store(time.Now().UnixNano())
			_, _, vars := salesforce(t, now)
			return vars
		},
		Request: func(t *testing.T, n int) (string, event.Event) {
			customer := uuid.NewString()
			e, err := event.New(crm.TypeRequested, "/services/unifier", crm.Request{CustomerID: customer, ConversationID: uuid.NewString(),
				Query: crm.Identity{Kind: "phone", Value: pop[n%len(pop)].Phone}}, event.WithSubject(customer), event.WithPartitionKey("customer:"+customer))
			if err != nil {
				t.Fatal(err)
			}
			return crm.TypeRequested, e
		},
	})
}

// request publishes a lookup request as the unifier does and returns it.
func (tb *testBundle) request(t *testing.T, kind, value string) event.Event {
	t.Helper()
	customer, conv := uuid.NewString(), uuid.NewString()
	e, err := event.New(crm.TypeRequested, "/services/unifier", crm.Request{CustomerID: customer, ConversationID: conv,
		Query: crm.Identity{Kind: kind, Value: value}}, event.WithSubject(customer), event.WithPartitionKey("customer:"+customer))
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.bus.Client.Publish(context.Background(), crm.TypeRequested, e); err != nil {
		t.Fatal(err)
	}
	return e
}

// answer waits for the answer to req.
func (tb *testBundle) answer(t *testing.T, req event.Event) (event.Event, crm.Answer) {
	t.Helper()
	var got event.Event
	bustest.WaitFor(t, 20*time.Second, "answer to "+req.ID(), func() bool {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		e, ok := tb.seen[req.ID()]
		got = e
		return ok
	})
	var a crm.Answer
	if err := event.DecodeData(got, &a); err != nil {
		t.Fatal(err)
	}
	return got, a
}

func (tb *testBundle) calls(op string) int64 { return tb.env.Stats()["salesforce "+op].Calls }

func has(ids []crm.Identity, kind, value string) bool {
	for _, id := range ids {
		if id.Kind == kind && id.Value == value {
			return true
		}
	}
	return false
}

func TestLookupEndToEnd(t *testing.T) {
	t.Parallel()
	tb := setup(t, nil)
	contacts := map[int]sfsim.Contact{}
	for _, c := range tb.sf.Contacts() {
		if _, dup := contacts[c.Customer]; !dup { // the first is the newest
			contacts[c.Customer] = c
		}
	}
	type pending struct {
		c   sim.Customer
		req event.Event
		by  string
	}
	var reqs []pending
	for _, c := range tb.pop {
		reqs = append(reqs, pending{c, tb.request(t, "phone", c.Phone), "phone"}, pending{c, tb.request(t, "email", c.Email), "email"})
	}
	for _, p := range reqs {
		e, a := tb.answer(t, p.req)
		if e.Type() != crm.TypeCompleted || e.Source() != "/connectors/crm" || e.Subject() != a.CustomerID ||
			event.PartitionKey(e) != event.PartitionKey(p.req) || a.Provider != "salesforce" {
			t.Fatalf("answer %s %s: %+v", e.Type(), e.Source(), a)
		}
		if err := schema.Default().Validate(e.Type(), e.Data()); err != nil {
			t.Fatalf("answer not schema-valid: %v", err)
		}
		var req crm.Request
		_ = event.DecodeData(p.req, &req)
		if a.CustomerID != req.CustomerID || a.ConversationID != req.ConversationID || a.Query != req.Query {
			t.Fatalf("request fields not echoed: %+v vs %+v", a, req)
		}
		ct, known := contacts[p.c.ID]
		if !known {
			if *a.Found || a.Identities != nil || a.Profile != nil {
				t.Fatalf("customer %d is not in the CRM, got %+v", p.c.ID, a)
			}
			continue
		}
		if !*a.Found {
			t.Fatalf("customer %d by %s not found", p.c.ID, p.by)
		}
		// The identities the unifier links: crm_id, the phone in E.164, the email in lower case,
		// the membership number.
		if !has(a.Identities, "crm_id", ct.ID) || !has(a.Identities, "phone", p.c.Phone) || !has(a.Identities, "email", p.c.Email) {
			t.Fatalf("customer %d (stored phone %q / %q, email %q): identities %+v", p.c.ID, ct.Phone, ct.MobilePhone, ct.Email, a.Identities)
		}
		if ct.MemberNumber != "" && !has(a.Identities, "member_id", ct.MemberNumber) {
			t.Fatalf("member number missing: %+v", a.Identities)
		}
		if a.Profile["name"] != ct.Name || a.Profile["company"] != ct.AccountName || a.Profile["crm_id"] != ct.ID ||
			a.Profile["vip_level"] != ct.VIPLevel || !strings.HasSuffix(a.Profile["crm_url"], "/lightning/r/Contact/"+ct.ID+"/view") {
			t.Fatalf("profile %+v for %+v", a.Profile, ct)
		}
		// Office landlines stored in Phone are not linked (a shared line would join strangers).
		for _, id := range a.Identities {
			if id.Kind == "phone" && id.Value != p.c.Phone {
				t.Fatalf("linked another phone %s", id.Value)
			}
		}
	}
	// One token for all of it.
	if n := tb.calls(sfsim.OpToken); n != 1 {
		t.Fatalf("%d token calls for %d lookups", n, len(reqs))
	}
}

func TestCache(t *testing.T) {
	t.Parallel()
	tb := setup(t, nil)
	c := tb.pop[1]
	_, first := tb.answer(t, tb.request(t, "phone", c.Phone))
	if !*first.Found || tb.calls(sfsim.OpQuery) != 1 {
		t.Fatalf("first lookup: %+v, %d queries", first, tb.calls(sfsim.OpQuery))
	}
	// The same identity, spelled nationally: normalised to the same key, served from the cache.
	_, second := tb.answer(t, tb.request(t, "phone", strings.TrimPrefix(c.Phone, "+86")))
	if n := tb.calls(sfsim.OpQuery); n != 1 || !*second.Found || second.Profile["crm_id"] != first.Profile["crm_id"] {
		t.Fatalf("cache hit reached the sandbox: %d queries, %+v", n, second)
	}

	// Concurrent misses of one identity: one call.
	var reqs []event.Event
	for range 12 {
		reqs = append(reqs, tb.request(t, "email", tb.pop[2].Email))
	}
	for _, r := range reqs {
		if _, a := tb.answer(t, r); !*a.Found {
			t.Fatalf("%+v", a)
		}
	}
	if n := tb.calls(sfsim.OpQuery); n != 2 {
		t.Fatalf("12 concurrent lookups of one email made %d queries, want 1 more", n-1)
	}
}

func TestTokenRefresh(t *testing.T) {
	t.Parallel()
	tb := setup(t, nil)
	if _, a := tb.answer(t, tb.request(t, "phone", tb.pop[1].Phone)); !*a.Found {
		t.Fatal(a)
	}
	// The session ends (timeout or revocation): the query gets 401 INVALID_SESSION_ID, the
	// connector re-authenticates once and answers.
	tb.sf.ExpireSessions()
	if _, a := tb.answer(t, tb.request(t, "phone", tb.pop[2].Phone)); !*a.Found {
		t.Fatal(a)
	}
	if n := tb.calls(sfsim.OpToken); n != 2 {
		t.Fatalf("%d token calls, want 2", n)
	}
	// The session's lifetime passes on the Salesforce side.
	tb.now.Add(int64(3 * time.Hour))
	if _, a := tb.answer(t, tb.request(t, "phone", tb.pop[3].Phone)); !*a.Found {
		t.Fatal(a)
	}
	if n := tb.calls(sfsim.OpToken); n != 3 {
		t.Fatalf("%d token calls, want 3", n)
	}
	// A session that stays invalid: failed with the vendor's code, after one re-authentication.
	if err := tb.env.SetFault("salesforce query", sim.Fault{ErrorRatio: 1, Code: "INVALID_SESSION_ID"}); err != nil {
		t.Fatal(err)
	}
	e, a := tb.answer(t, tb.request(t, "phone", tb.pop[4].Phone))
	if e.Type() != crm.TypeFailed || a.ErrorCode != "INVALID_SESSION_ID" || a.Fallback == nil || a.Fallback.ManualURL == "" {
		t.Fatalf("%s %+v", e.Type(), a)
	}
	if err := schema.Default().Validate(e.Type(), e.Data()); err != nil {
		t.Fatal(err)
	}
}

// TestBadCredentials: credentials the CRM refuses at start stop the connector with a message
// naming them (check.go); credentials revoked later fail lookups with the vendor's code, without
// retrying the refused grant.
func TestBadCredentials(t *testing.T) {
	t.Parallel()
	t.Run("at start", func(t *testing.T) {
		t.Parallel()
		err := startErr(t, map[string]string{"SALESFORCE_CLIENT_SECRET": "wrong"}, nil)
		if !errors.Is(err, crm.ErrMisconfigured) || !strings.Contains(err.Error(), "SALESFORCE_CLIENT_SECRET") || !strings.Contains(err.Error(), "invalid_client") {
			t.Fatalf("start with a wrong secret: %v; want ErrMisconfigured naming SALESFORCE_CLIENT_SECRET and invalid_client", err)
		}
	})
	t.Run("revoked later", func(t *testing.T) {
		t.Parallel()
		tb := setup(t, nil)
		if _, a := tb.answer(t, tb.request(t, "email", tb.pop[1].Email)); !*a.Found {
			t.Fatal(a)
		}
		if err := tb.env.SetFault("salesforce oauth2/token", sim.Fault{ErrorRatio: 1, Code: "invalid_client"}); err != nil {
			t.Fatal(err)
		}
		tb.sf.ExpireSessions()
		before := tb.calls(sfsim.OpToken)
		e, a := tb.answer(t, tb.request(t, "email", tb.pop[2].Email))
		if e.Type() != crm.TypeFailed || a.ErrorCode != "invalid_client" || a.Found != nil {
			t.Fatalf("%s %+v", e.Type(), a)
		}
		// Refused credentials are not retried.
		if n := tb.calls(sfsim.OpToken) - before; n != 1 {
			t.Fatalf("%d token calls after the revocation, want 1", n)
		}
		// Unsupported query kinds are answered failed, without a call.
		before = tb.calls(sfsim.OpToken)
		e, a = tb.answer(t, tb.request(t, "wechat_openid", "oAbc"))
		if e.Type() != crm.TypeFailed || a.ErrorCode != "unsupported_query" || tb.calls(sfsim.OpToken) != before {
			t.Fatalf("%s %+v", e.Type(), a)
		}
	})
}

// TestBreaker: the query route answers with 2 s latency and 50 % errors. Lookups fail with a
// budget of 1 s — none can succeed in time, so any completed answer would prove the connector
// waited past its budget — the breaker opens and later lookups fail without reaching Salesforce;
// once the fault is gone the breaker recovers and lookups complete again.
func TestBreaker(t *testing.T) {
	t.Parallel()
	tb := setup(t, map[string]string{
		"CRM_LOOKUP_BUDGET":                             "1s",
		"RESILIENCE_SALESFORCE_QUERY_BREAKER_MIN_CALLS": "4", "RESILIENCE_SALESFORCE_QUERY_BREAKER_OPEN_FOR": "300ms",
		"RESILIENCE_SALESFORCE_QUERY_BREAKER_PROBES": "1",
	})
	// Warm the token so only the query route is faulty.
	if _, a := tb.answer(t, tb.request(t, "phone", tb.pop[0].Phone)); a.Found == nil {
		t.Fatal(a)
	}
	if err := tb.env.SetFault("salesforce query", sim.Fault{Latency: 2 * time.Second, ErrorRatio: 0.5}); err != nil {
		t.Fatal(err)
	}
	codes := map[string]int{}
	for i := 1; i <= 8; i++ {
		e, a := tb.answer(t, tb.request(t, "email", fmt.Sprintf("nobody%d@example.org", i)))
		if e.Type() != crm.TypeFailed {
			t.Fatalf("lookup %d answered %s with a 2s vendor and a 1s budget", i, e.Type())
		}
		codes[a.ErrorCode]++
		if err := schema.Default().Validate(e.Type(), e.Data()); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("failure codes while the vendor was slow: %v", codes)
	if codes["circuit_open"] == 0 {
		t.Fatalf("the breaker never opened: %v", codes)
	}
	if err := tb.env.SetFault("salesforce query", sim.Fault{}); err != nil {
		t.Fatal(err)
	}
	// Recovery: after the open period, a probe goes through and lookups complete again.
	recovered := false
	for i := 0; i < 50 && !recovered; i++ {
		e, _ := tb.answer(t, tb.request(t, "phone", tb.pop[i%len(tb.pop)].Phone))
		recovered = e.Type() == crm.TypeCompleted
		if !recovered {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if !recovered {
		t.Fatal("lookups did not complete again after the fault was cleared")
	}
}

// TestNoPersonalDataLeaks: audit records carry no unmasked phone, email or name, and the answers
// carry personal data only where the unifier needs it (the query and the identities).
func TestNoPersonalDataLeaks(t *testing.T) {
	t.Parallel()
	tb := setup(t, nil)
	var reqs []event.Event
	for _, c := range tb.pop[:8] {
		reqs = append(reqs, tb.request(t, "phone", c.Phone))
	}
	if err := tb.env.SetFault("salesforce query", sim.Fault{ErrorRatio: 1, Code: "MALFORMED_QUERY"}); err != nil {
		t.Fatal(err)
	}
	reqs = append(reqs, tb.request(t, "phone", tb.pop[9].Phone))
	for _, r := range reqs {
		e, a := tb.answer(t, r)
		a.Query, a.Identities = crm.Identity{}, nil
		b, _ := json.Marshal(a)
		if f := leaks(string(b)); len(f) > 0 {
			t.Fatalf("%s carries personal data outside query/identities: %v in %s", e.Type(), f, b)
		}
	}
	tb.stop() // flushes the audit records
	audits := tb.bus.Events(t, bus.StreamAudit, "omni.audit.crm")
	if len(audits) < len(reqs) {
		t.Fatalf("%d audit records for %d lookups", len(audits), len(reqs))
	}
	for _, e := range audits {
		if f := leaks(string(e.Data())); len(f) > 0 {
			t.Fatalf("audit record leaks %v: %s", f, e.Data())
		}
		for _, c := range tb.pop {
			if strings.Contains(string(e.Data()), strings.TrimPrefix(c.Phone, "+86")) || strings.Contains(string(e.Data()), c.Email) {
				t.Fatalf("audit record leaks customer %d: %s", c.ID, e.Data())
			}
		}
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	base := func() crm.Config {
		return crm.Config{Provider: "salesforce", LoginURL: "https://acme.my.salesforce.com", ClientID: "id", ClientSecret: "s",
			APIVersion: "v60.0", MemberField: "Member_Number__c", PhoneRegion: "CN", TokenTTL: time.Hour, Budget: 2 * time.Second,
			CacheTTL: time.Minute, CacheSize: 10, Concurrency: 1}
	}
	ok := base()
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		mutate func(*crm.Config)
		want   string
	}{
		"typo provider": {func(c *crm.Config) { c.Provider = "salesforse" }, `did you mean salesforce?`},
		"no secret":     {func(c *crm.Config) { c.ClientSecret = "" }, "SALESFORCE_CLIENT_SECRET"},
		"bad version":   {func(c *crm.Config) { c.APIVersion = "60" }, "SALESFORCE_API_VERSION"},
		"bad field":     {func(c *crm.Config) { c.MemberField = "Member Number" }, "SALESFORCE_MEMBER_FIELD"},
		"bad url":       {func(c *crm.Config) { c.LoginURL = "acme.my.salesforce.com" }, "SALESFORCE_LOGIN_URL"},
	} {
		c := base()
		tc.mutate(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want it to mention %s", name, err, tc.want)
		}
	}
}

func logOut() io.Writer {
	if testing.Verbose() {
		return os.Stderr
	}
	return io.Discard
}

// uuidRE matches UUIDs, blanked before scanning: pii.Scan reads dash-grouped digit runs inside a
// UUID ("…2ca1-4144-9903-54ca…") as a phone number.
var uuidRE = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)

// leaks returns the unmasked personal data in s (ids aside).
func leaks(s string) []pii.Finding { return pii.Scan(uuidRE.ReplaceAllString(s, "<uuid>")) }
