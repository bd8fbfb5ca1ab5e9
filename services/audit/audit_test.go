package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/omnibus-dev/omnibus/pkg/alert"
	pkgaudit "github.com/omnibus-dev/omnibus/pkg/audit"
	"github.com/omnibus-dev/omnibus/pkg/auth"
	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/pgtest"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/services/audit"
	"github.com/omnibus-dev/omnibus/services/audit/internal/store"
)

func TestMain(m *testing.M) {
	audit.SetDLQWatchInterval(50 * time.Millisecond)
	goleak.VerifyTestMain(pgtest.Wrap(m))
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

type testBundle struct {
	bus    *bustest.Bundle
	pool   *pgxpool.Pool
	api    *httptest.Server
	issuer *auth.DevIssuer // the OpenID Connect provider the API trusts (unless env names another)
	token  string          // an auditor's token of issuer
}

// newIssuer serves an OpenID Connect issuer (discovery and JWKS) until the test ends; its iss is
// <URL>/desk/dev, as the desk's development issuer's.
func newIssuer(t *testing.T) (*auth.DevIssuer, string) {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	dev, err := auth.NewDevIssuer(srv.URL+auth.DevPath, "omnibus-desk")
	if err != nil {
		t.Fatal(err)
	}
	dev.Mount(mux)
	return dev, srv.URL
}

func mint(t *testing.T, dev *auth.DevIssuer, roles ...string) string {
	t.Helper()
	tok, err := dev.Mint("auditor-1", "Auditor", roles, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// setup runs the audit service on a fresh JetStream server and database until the test ends.
// Unless env configures the API's issuer (DESK_OIDC_ISSUER, DESK_DEV_LOGIN, or NO_ISSUER to
// leave it unconfigured), it trusts b.issuer.
func setup(t *testing.T, env map[string]string) *testBundle {
	t.Helper()
	b := &testBundle{bus: bustest.New(t, bus.WithLogger(quiet())), pool: pgtest.NewDB(t)}
	b.issuer, _ = newIssuer(t)
	b.token = mint(t, b.issuer, auth.RoleAuditor)
	env = maps.Clone(env)
	if env == nil {
		env = map[string]string{}
	}
	_, dev := env["DESK_DEV_LOGIN"]
	_, oidc := env["DESK_OIDC_ISSUER"]
	_, none := env["NO_ISSUER"]
	if !dev && !oidc && !none {
		env["DESK_OIDC_ISSUER"] = b.issuer.Issuer()
	}
	mux := http.NewServeMux()
	b.api = httptest.NewServer(mux)
	t.Cleanup(b.api.Close)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		done <- audit.Run(ctx, service.Deps{Bus: b.bus.Client, DB: b.pool, Mux: mux, Log: quiet(), Health: service.NewHealth(),
			Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }, Started: func() { close(started) }})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("audit stopped with %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("audit did not stop")
		}
	})
	// Started: the API is mounted and the consumer subscribed (a test that ends sooner would
	// stop the service in the middle of its start).
	select {
	case <-started:
	case err := <-done:
		done <- err // for the cleanup
		t.Fatalf("audit stopped while starting: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("audit did not start within 20s")
	}
	return b
}

func record(i int, at time.Time, vendor, customer, trace string) event.Event {
	r := pkgaudit.Record{At: at.UTC(), Service: "logistics", Vendor: vendor, Op: "route_query", Outcome: pkgaudit.OutcomeOK,
		Status: 200, Code: "A1000", LatencyMS: float64(i), Attempts: 1, Idempotent: true, CustomerID: customer, TraceID: trace,
		Request: &pkgaudit.Body{Text: `{"waybill":"SF1"}`, Bytes: 17, ContentType: "application/json"}}
	if i%3 == 0 {
		r.Outcome, r.Error, r.Fallback = pkgaudit.OutcomeTimeout, "timeout", pkgaudit.FallbackManual
	}
	e, err := event.New(pkgaudit.TypeCallRecorded, "/connectors/logistics", r, event.WithTime(at), event.WithID(fmt.Sprintf("rec-%03d", i)))
	if err != nil {
		panic(err)
	}
	return e
}

func (b *testBundle) count(t *testing.T) int {
	t.Helper()
	var n int
	if err := b.pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_records`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// get asks the API with b.token.
func (b *testBundle) get(t *testing.T, query string) (int, audit.Page, string) {
	t.Helper()
	return b.getWith(t, query, b.token)
}

// getWith asks the API with token ("" for none).
func (b *testBundle) getWith(t *testing.T, query, token string) (int, audit.Page, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.api.URL+"/api/audit?"+query, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var p audit.Page
	_ = json.Unmarshal(body, &p)
	return resp.StatusCode, p, string(body)
}

func TestStoresQueriesAndPaginates(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	trace := "4bf92f3577b34da6a3ce929d0e0e4736"
	var evs []event.Event
	for i := range 30 {
		vendor, customer, tr := "sfexpress", "cust-a", ""
		if i%2 == 1 {
			vendor, customer = "cainiao", "cust-b"
		}
		if i == 7 {
			tr = trace
		}
		// Spread over three days: the records need three partitions.
		evs = append(evs, record(i, now.Add(-time.Duration(i)*2*time.Hour), vendor, customer, tr))
	}
	for _, e := range evs {
		if err := b.bus.Client.Publish(ctx, pkgaudit.Subject("logistics"), e); err != nil {
			t.Fatal(err)
		}
	}
	// A redelivery after JetStream's duplicate window (a fresh Nats-Msg-Id) is stored once.
	h, body, _ := event.Encode(evs[0])
	h.Set("Nats-Msg-Id", "again-"+evs[0].ID())
	if _, err := b.bus.Client.JetStream().PublishMsg(ctx, &nats.Msg{Subject: "omni.audit.logistics", Header: h, Data: body}); err != nil {
		t.Fatal(err)
	}
	bustest.WaitFor(t, 20*time.Second, "30 stored records", func() bool { return b.count(t) == 30 })
	time.Sleep(200 * time.Millisecond) // let a wrongly duplicated record show up
	if n := b.count(t); n != 30 {
		t.Fatalf("%d rows, want 30 (the redelivery must be ignored)", n)
	}

	status, p, raw := b.get(t, "vendor=sfexpress&limit=100")
	if status != 200 || len(p.Records) != 15 || p.NextCursor != "" {
		t.Fatalf("vendor filter: %d %d records next %q: %s", status, len(p.Records), p.NextCursor, raw)
	}
	for i := 1; i < len(p.Records); i++ {
		if p.Records[i].At.After(p.Records[i-1].At) {
			t.Fatal("records are not newest first")
		}
	}
	_, p, _ = b.get(t, "trace_id="+trace)
	if len(p.Records) != 1 || p.Records[0].ID != "rec-007" || p.Records[0].Request == nil || p.Records[0].Request.Text != `{"waybill":"SF1"}` {
		t.Fatalf("trace filter: %+v", p.Records)
	}
	_, p, _ = b.get(t, "customer_id=cust-b&outcome=timeout")
	for _, r := range p.Records {
		if r.CustomerID != "cust-b" || r.Outcome != "timeout" || r.Fallback != "manual" {
			t.Fatalf("customer+outcome filter returned %+v", r)
		}
	}
	if len(p.Records) != 5 { // odd i divisible by 3 below 30: 3, 9, 15, 21, 27
		t.Fatalf("customer+outcome filter: %d records", len(p.Records))
	}
	from := now.Add(-10 * time.Hour).Format(time.RFC3339Nano)
	_, p, _ = b.get(t, url.Values{"from": {from}}.Encode())
	if len(p.Records) != 6 { // i = 0..5 (at >= now-10h; i=5 is exactly now-10h)
		t.Fatalf("from filter: %d records", len(p.Records))
	}

	// Cursor pagination walks every record once.
	seen := map[string]bool{}
	q := url.Values{"limit": {"7"}}
	for pages := 0; ; pages++ {
		status, p, raw := b.get(t, q.Encode())
		if status != 200 || pages > 10 {
			t.Fatalf("page %d: %d %s", pages, status, raw)
		}
		for _, r := range p.Records {
			if seen[r.ID] {
				t.Fatalf("record %s on two pages", r.ID)
			}
			seen[r.ID] = true
		}
		if p.NextCursor == "" {
			break
		}
		q.Set("cursor", p.NextCursor)
	}
	if len(seen) != 30 {
		t.Fatalf("pagination saw %d records", len(seen))
	}

	// The CLI reads the same API.
	var out, errOut bytes.Buffer
	env := func(k string) (string, bool) {
		v, ok := map[string]string{"AUDIT_URL": b.api.URL, "AUDIT_API_TOKEN": b.token}[k]
		return v, ok
	}
	if err := audit.Command(ctx, []string{"--vendor", "cainiao", "--limit", "20", "--from", "7d"}, env, &out, &errOut); err != nil {
		t.Fatalf("%v: %s", err, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 16 || !strings.HasPrefix(lines[0], "TIME") || !strings.Contains(lines[1], "cainiao") {
		t.Fatalf("CLI output:\n%s", out.String())
	}
	out.Reset()
	if err := audit.Command(ctx, []string{"--json", "--limit", "3"}, env, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "\n"); n != 3 {
		t.Fatalf("CLI --json printed %d lines", n)
	}
}

func TestAPIRejectsBadRequests(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	for _, q := range []string{"limit=0", "limit=5000", "from=yesterday", "cursor=bad", "vendorr=x", "from=2026-03-02&to=2026-03-01"} {
		status, _, body := b.get(t, q)
		if status != http.StatusBadRequest || !strings.Contains(body, `"error"`) {
			t.Errorf("%s: %d %s, want 400 with a reason", q, status, body)
		}
	}
}

// TestAPIRequiresAToken: the records name customers and carry what they wrote, so the API
// answers only tokens of the trusted issuer with the auditor or supervisor role.
func TestAPIRequiresAToken(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	if err := b.bus.Client.Publish(context.Background(), "omni.audit.crm", record(1, time.Now().UTC(), "salesforce", "cust-a", "")); err != nil {
		t.Fatal(err)
	}
	bustest.WaitFor(t, 10*time.Second, "the record stored", func() bool { return b.count(t) == 1 })
	foreign, _ := newIssuer(t)
	expired, err := b.issuer.Mint("auditor-1", "Auditor", []string{auth.RoleAuditor}, -time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, token string
		want        int
	}{
		{"anonymous", "", http.StatusUnauthorized},
		{"not a JWT", "s3cret", http.StatusUnauthorized},
		{"an agent", mint(t, b.issuer, auth.RoleAgent), http.StatusUnauthorized},
		{"another issuer's auditor", mint(t, foreign, auth.RoleAuditor), http.StatusUnauthorized},
		{"expired", expired, http.StatusUnauthorized},
		{"an auditor", b.token, http.StatusOK},
		{"a supervisor", mint(t, b.issuer, auth.RoleSupervisor), http.StatusOK},
	} {
		status, page, body := b.getWith(t, "limit=10", tc.token)
		if status != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, status, body, tc.want)
			continue
		}
		if status != http.StatusOK {
			if strings.Contains(body, "cust-a") || strings.Contains(body, "go-jose") || strings.Contains(body, "records") {
				t.Errorf("%s: the refusal carries %s", tc.name, body)
			}
			continue
		}
		if len(page.Records) != 1 || page.Records[0].CustomerID != "cust-a" {
			t.Errorf("%s: %s, want the stored record", tc.name, body)
		}
	}
	var out, errOut bytes.Buffer
	env := func(k string) (string, bool) {
		v, ok := map[string]string{"AUDIT_URL": b.api.URL}[k]
		return v, ok
	}
	if err := audit.Command(context.Background(), nil, env, &out, &errOut); err == nil {
		t.Fatal("the CLI read the API without a token")
	}
	if err := audit.Command(context.Background(), []string{"--token", b.token}, env, &out, &errOut); err != nil {
		t.Fatalf("CLI with token: %v", err)
	}
}

// TestAPIDevLogin: with DESK_DEV_LOGIN the API trusts the desk's development issuer at
// DESK_PUBLIC_URL (and only tokens with a reading role); with no issuer at all it refuses
// everything.
func TestAPIDevLogin(t *testing.T) {
	t.Parallel()
	desk, deskURL := newIssuer(t) // stands for the desk: its dev issuer at <DESK_PUBLIC_URL>/desk/dev
	b := setup(t, map[string]string{"DESK_DEV_LOGIN": "true", "DESK_PUBLIC_URL": deskURL})
	if status, _, body := b.getWith(t, "limit=1", mint(t, desk, auth.RoleSupervisor)); status != http.StatusOK {
		t.Fatalf("a supervisor of the dev issuer: %d %s", status, body)
	}
	for name, tok := range map[string]string{"anonymous": "", "an agent": mint(t, desk, auth.RoleAgent), "another issuer": b.token} {
		if status, _, body := b.getWith(t, "limit=1", tok); status != http.StatusUnauthorized {
			t.Errorf("%s: %d %s, want 401", name, status, body)
		}
	}
	none := setup(t, map[string]string{"NO_ISSUER": "1"})
	if status, _, body := none.getWith(t, "limit=1", none.token); status != http.StatusServiceUnavailable || !strings.Contains(body, "DESK_OIDC_ISSUER") {
		t.Fatalf("no issuer configured: %d %s, want 503 naming DESK_OIDC_ISSUER", status, body)
	}
}

func TestPartitionsAndRetention(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewDB(t, pgtest.WithMigrations("audit", store.Migrate))
	ctx := context.Background()
	st := store.New(pool)
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	if err := st.EnsurePartitions(ctx, now.AddDate(0, 0, -200), now.AddDate(0, 0, -198)); err != nil {
		t.Fatal(err)
	}
	if err := st.EnsurePartitions(ctx, now.AddDate(0, 0, -1), now.AddDate(0, 0, 7)); err != nil {
		t.Fatal(err)
	}
	rows := []store.Row{
		{ID: "old", Record: pkgaudit.Record{At: now.AddDate(0, 0, -199), Service: "crm", Vendor: "salesforce", Op: "lookup", Outcome: "ok"}},
		{ID: "new", Record: pkgaudit.Record{At: now, Service: "crm", Vendor: "salesforce", Op: "lookup", Outcome: "ok"}},
		{ID: "late", Record: pkgaudit.Record{At: now.AddDate(0, 0, -30), Service: "crm", Vendor: "salesforce", Op: "lookup", Outcome: "ok"}},
	}
	if n, err := st.Insert(ctx, rows); err != nil || n != 3 {
		t.Fatalf("insert: %d, %v", n, err)
	}
	if n, err := st.Insert(ctx, rows); err != nil || n != 0 {
		t.Fatalf("insert again: %d new rows, %v; want 0", n, err)
	}
	days, err := st.Partitions(ctx)
	if err != nil || len(days) != 3+9+1 { // 3 old days, yesterday..+7, and the late record's day made on demand
		t.Fatalf("partitions %v, %v", days, err)
	}
	dropped, err := st.DropBefore(ctx, now.AddDate(0, 0, -180))
	if err != nil || len(dropped) != 3 || dropped[0] != store.PartitionName(now.AddDate(0, 0, -200)) {
		t.Fatalf("dropped %v, %v", dropped, err)
	}
	p, err := st.Query(ctx, store.Filter{})
	if err != nil || len(p.Records) != 2 || p.Records[0].ID != "new" || p.Records[1].ID != "late" {
		t.Fatalf("after retention: %+v, %v", p.Records, err)
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]time.Duration{"180d": 180 * 24 * time.Hour, "4320h": 4320 * time.Hour, "1d": 24 * time.Hour} {
		if d, err := audit.ParseRetention(v); err != nil || d != want {
			t.Errorf("ParseRetention(%q) = %s, %v", v, d, err)
		}
	}
	for _, bad := range []string{"12h", "xd", "-1d"} {
		cfg := audit.Config{Retention: bad, PartitionsAhead: 7, BatchSize: 500, Maintenance: time.Hour}
		if err := cfg.Validate(); err == nil {
			t.Errorf("AUDIT_RETENTION=%s accepted", bad)
		}
	}
}

func TestExpiredAndFutureRecords(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	now := time.Now().UTC()
	for i, at := range []time.Time{now.AddDate(0, 0, -200), now.AddDate(0, 0, 3), now} {
		if err := b.bus.Client.Publish(ctx, "omni.audit.crm", record(i+1, at, "salesforce", "c", "")); err != nil {
			t.Fatal(err)
		}
	}
	bustest.WaitFor(t, 20*time.Second, "the future record dead-lettered", func() bool {
		return b.bus.StoredCount(t, bus.StreamDLQ, "omni.dlq.audit") == 1
	})
	bustest.WaitFor(t, 20*time.Second, "the current record stored", func() bool { return b.count(t) == 1 })
	_, p, _ := b.get(t, "")
	if len(p.Records) != 1 || p.Records[0].ID != "rec-003" {
		t.Fatalf("stored %+v, want only the current record (the expired one is not kept)", p.Records)
	}
}

// The service watches the dead-letter queue: a dead letter raises an ops alert, resolved once the
// subject is empty again.
func TestDeadLettersRaiseAnOpsAlert(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	e, err := event.New(pkgaudit.TypeCallRecorded, "/connectors/crm", map[string]any{"broken": true})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.bus.Client.DeadLetterEvent(ctx, "crm", "omni.audit.crm", e, "schema: invalid"); err != nil {
		t.Fatal(err)
	}
	type opsAlert struct {
		AlertID, Kind, Service, Subject, Summary string
		Messages                                 int
	}
	read := func(typ string) []opsAlert {
		var out []opsAlert
		for _, e := range b.bus.Events(t, bus.StreamOps, typ) {
			var a opsAlert
			if err := event.DecodeData(e, &a); err != nil {
				t.Fatal(err)
			}
			if e.Source() != audit.Source {
				t.Errorf("alert from %q, want %q", e.Source(), audit.Source)
			}
			out = append(out, a)
		}
		return out
	}
	bustest.WaitFor(t, 20*time.Second, "the dead_letters alert", func() bool { return len(read(alert.TypeRaised)) == 1 })
	raised := read(alert.TypeRaised)[0]
	if raised.Kind != alert.KindDeadLetters || raised.Service != "crm" || raised.Subject != "omni.dlq.crm" || raised.Messages != 1 ||
		!strings.Contains(raised.Summary, "omnibus dlq list --service crm") {
		t.Fatalf("raised %+v", raised)
	}

	st, err := b.bus.Client.JetStream().Stream(ctx, bus.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	letters, err := b.bus.Client.ListDeadLetters(ctx, bus.DeadLetterFilter{Service: "crm"})
	if err != nil || len(letters) != 1 {
		t.Fatalf("dead letters %v, %v", letters, err)
	}
	if err := st.DeleteMsg(ctx, letters[0].Seq); err != nil {
		t.Fatal(err)
	}
	bustest.WaitFor(t, 20*time.Second, "the alert resolved", func() bool { return len(read(alert.TypeResolved)) == 1 })
	if resolved := read(alert.TypeResolved)[0]; resolved.AlertID != raised.AlertID || resolved.Messages != 0 {
		t.Fatalf("resolved %+v, want the end of %+v", resolved, raised)
	}
}
