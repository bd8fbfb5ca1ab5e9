package salesforce_test

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sfwire "github.com/omnibus-dev/omnibus/pkg/wire/salesforce"
	"github.com/omnibus-dev/omnibus/services/sandbox/salesforce"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

const (
	clientID     = "3MVG9sim.client"
	clientSecret = "3F1B0C9E5D7A2B4C"
)

type bundle struct {
	env  *sim.Env
	sim  *salesforce.Sim
	base string
	now  *atomic.Int64
}

func setup(t *testing.T, cfg salesforce.Config) *bundle {
	t.Helper()
	mux := http.NewServeMux()
	env := sim.NewEnv(mux, "http://127.0.0.1:1/hooks", nil, 0, slog.New(slog.DiscardHandler))
	now := &atomic.Int64{}
	now.Store(time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC).UnixNano())
	cfg.ClientID, cfg.ClientSecret = clientID, clientSecret
	cfg.Now = func() time.Time { return time.Unix(0, now.Load()) }
	s, err := salesforce.New(env, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &bundle{env: env, sim: s, base: srv.URL + "/sandbox/salesforce", now: now}
}

func (b *bundle) token(t *testing.T, form url.Values) (int, map[string]string) {
	t.Helper()
	resp, err := http.PostForm(b.base+sfwire.TokenPath, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (b *bundle) query(t *testing.T, tok, version, soql string) (int, []byte) {
	t.Helper()
	return b.get(t, tok, sfwire.QueryPath(version)+"?q="+url.QueryEscape(soql))
}

// get GETs path below the simulator with the bearer token tok ("" for none).
func (b *bundle) get(t *testing.T, tok, path string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.base+path, nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

func creds() url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {clientSecret}}
}

func TestToken(t *testing.T) {
	t.Parallel()
	b := setup(t, salesforce.Config{Customers: 20, Seed: 1})
	status, tok := b.token(t, creds())
	if status != 200 || tok["token_type"] != "Bearer" || tok["instance_url"] != b.base || tok["scope"] != "api" {
		t.Fatalf("%d %v", status, tok)
	}
	if err := sfwire.VerifyTokenSignature(clientSecret, tok["id"], tok["issued_at"], tok["signature"]); err != nil {
		t.Fatal(err)
	}
	if tok["issued_at"] != "1795766400000" || !strings.HasPrefix(tok["access_token"], "00D5g0000000007!") {
		t.Fatalf("issued_at %s, token %s", tok["issued_at"], tok["access_token"])
	}
	for name, c := range map[string]struct {
		form url.Values
		code string
	}{
		"wrong secret":   {url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {"x"}}, "invalid_client"},
		"unknown client": {url.Values{"grant_type": {"client_credentials"}, "client_id": {"x"}, "client_secret": {clientSecret}}, "invalid_client_id"},
		"password grant": {url.Values{"grant_type": {"password"}, "client_id": {clientID}, "client_secret": {clientSecret}}, "unsupported_grant_type"},
	} {
		status, out := b.token(t, c.form)
		if status != 400 || out["error"] != c.code || out["error_description"] == "" {
			t.Errorf("%s: %d %v", name, status, out)
		}
	}
	// HTTP Basic works too.
	req, _ := http.NewRequest(http.MethodPost, b.base+sfwire.TokenPath, strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, clientSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("basic auth: %v %v", resp, err)
	}
	resp.Body.Close()
	if n := len(b.env.Records(sim.Filter{Vendor: "salesforce", Op: salesforce.OpToken})); n != 5 {
		t.Fatalf("%d token records", n)
	}
}

func TestQueryFindsPopulation(t *testing.T) {
	t.Parallel()
	const n = 60
	b := setup(t, salesforce.Config{Customers: n, Seed: 7})
	_, tok := b.token(t, creds())
	found := 0
	for _, c := range sim.Population(n, 7) {
		soql, err := sfwire.ContactQuery(append(sfwire.ContactFields, "Member_Number__c", "VIP_Level__c"), "phone", c.Phone, 5)
		if err != nil {
			t.Fatal(err)
		}
		status, body := b.query(t, tok["access_token"], "v60.0", soql)
		if status != 200 {
			t.Fatalf("%d %s", status, body)
		}
		r, err := sfwire.ParseQueryResponse(body)
		if err != nil {
			t.Fatal(err)
		}
		byEmail, _ := sfwire.ContactQuery([]string{"Id", "Email"}, "email", c.Email, 5)
		_, ebody := b.query(t, tok["access_token"], "v60.0", byEmail)
		er, err := sfwire.ParseQueryResponse(ebody)
		if err != nil {
			t.Fatal(err)
		}
		if c.ID%10 == 0 {
			if r.TotalSize != 0 || er.TotalSize != 0 {
				t.Fatalf("customer %d should be unknown: %s", c.ID, body)
			}
			continue
		}
		if r.TotalSize == 0 || er.TotalSize == 0 {
			t.Fatalf("customer %d (%s) not found by phone or email: %s %s", c.ID, c.Phone, body, ebody)
		}
		found++
		rec := r.Records[0]
		phone := rec.String("Phone")
		if p, _ := sfwire.NormalizePhone(phone, "CN"); p != c.Phone {
			if p, _ := sfwire.NormalizePhone(rec.String("MobilePhone"), "CN"); p != c.Phone {
				t.Fatalf("customer %d: record phones %q / %q", c.ID, phone, rec.String("MobilePhone"))
			}
		}
		if !strings.EqualFold(rec.String("Email"), c.Email) || rec.String("Account.Name") == "" || len(rec.String("Id")) != 18 {
			t.Fatalf("record %v", rec)
		}
		if c.ID%7 == 0 && (r.TotalSize != 2 || rec.String("LastModifiedDate") <= r.Records[1].String("LastModifiedDate")) {
			t.Fatalf("customer %d: want the newer of two duplicates first: %s", c.ID, body)
		}
	}
	if found < n*8/10 {
		t.Fatalf("only %d of %d customers in the CRM", found, n)
	}
}

func TestQueryErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, salesforce.Config{Customers: 5, Seed: 1, SessionTTL: time.Hour})
	_, tok := b.token(t, creds())
	access := tok["access_token"]
	tests := []struct {
		name, tok, version, soql string
		status                   int
		code                     string
	}{
		{"no token", "", "v60.0", "SELECT Id FROM Contact", 401, sfwire.CodeInvalidSession},
		{"forged token", "00D!forged", "v60.0", "SELECT Id FROM Contact", 401, sfwire.CodeInvalidSession},
		{"malformed", access, "v60.0", "SELECT Id FORM Contact", 400, sfwire.CodeMalformedQuery},
		{"unknown object", access, "v60.0", "SELECT Id FROM Opportunity", 400, sfwire.CodeInvalidType},
		{"unknown field", access, "v60.0", "SELECT Id, Nickname__c FROM Contact", 400, sfwire.CodeInvalidField},
		{"unknown where field", access, "v60.0", "SELECT Id FROM Contact WHERE Fax = '1'", 400, sfwire.CodeInvalidField},
		{"old version", access, "v20.0", "SELECT Id FROM Contact", 404, sfwire.CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			status, body := b.query(t, tt.tok, tt.version, tt.soql)
			err := sfwire.ParseErrors(status, body)
			if status != tt.status || err.Code != tt.code {
				t.Fatalf("%d %s", status, body)
			}
		})
	}
}

func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	b := setup(t, salesforce.Config{Customers: 5, Seed: 1, SessionTTL: time.Hour})
	_, tok := b.token(t, creds())
	if status, body := b.query(t, tok["access_token"], "v60.0", "SELECT Id FROM Contact LIMIT 1"); status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	b.now.Add(int64(time.Hour))
	status, body := b.query(t, tok["access_token"], "v60.0", "SELECT Id FROM Contact LIMIT 1")
	if err := sfwire.ParseErrors(status, body); status != 401 || !errors.Is(err, sfwire.ErrInvalidSession) {
		t.Fatalf("after TTL: %d %s", status, body)
	}
	_, tok = b.token(t, creds())
	b.sim.ExpireSessions()
	if status, _ := b.query(t, tok["access_token"], "v60.0", "SELECT Id FROM Contact LIMIT 1"); status != 401 {
		t.Fatalf("after ExpireSessions: %d", status)
	}
}

func TestPagingAndFaults(t *testing.T) {
	t.Parallel()
	b := setup(t, salesforce.Config{Customers: 30, Seed: 3, BatchSize: 10})
	_, tok := b.token(t, creds())
	status, body := b.query(t, tok["access_token"], "v60.0", "SELECT Id, Name FROM Contact ORDER BY Id")
	r, err := sfwire.ParseQueryResponse(body)
	if status != 200 || err != nil || r.Done || len(r.Records) != 10 {
		t.Fatalf("%d %v %s", status, err, body)
	}
	total, seen := r.TotalSize, len(r.Records)
	for !r.Done {
		req, _ := http.NewRequest(http.MethodGet, strings.TrimSuffix(b.base, "/sandbox/salesforce")+"/sandbox/salesforce"+r.NextRecordsURL, nil)
		req.Header.Set("Authorization", "Bearer "+tok["access_token"])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if r, err = sfwire.ParseQueryResponse(body); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		seen += len(r.Records)
	}
	if seen != total || total != len(b.sim.Contacts()) {
		t.Fatalf("paged %d of %d (%d contacts)", seen, total, len(b.sim.Contacts()))
	}
	for code, want := range map[string]int{sfwire.CodeRequestLimit: 403, sfwire.CodeInvalidSession: 401, "": 500, sfwire.CodeServerUnavailable: 503} {
		if err := b.env.SetFault("salesforce query", sim.Fault{ErrorRatio: 1, Code: code}); err != nil {
			t.Fatal(err)
		}
		status, body := b.query(t, tok["access_token"], "v60.0", "SELECT Id FROM Contact")
		if e := sfwire.ParseErrors(status, body); status != want || (code != "" && e.Code != code) {
			t.Errorf("fault %q: %d %s", code, status, body)
		}
	}
}
