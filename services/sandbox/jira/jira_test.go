package jira_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	wire "github.com/omnibus-dev/omnibus/pkg/wire/jira"
	"github.com/omnibus-dev/omnibus/services/sandbox/jira"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim/simtest"
)

type bundle struct {
	env   *sim.Env
	srv   *httptest.Server
	sim   *jira.Sim
	hooks *simtest.Recorder
}

func setup(t *testing.T) bundle {
	t.Helper()
	hooks := simtest.NewRecorder()
	sb := simtest.New(t, hooks)
	s, err := jira.New(sb.Env, jira.Config{Email: "bot@example.com", APIToken: "tok", WebhookSecret: "hook-secret"})
	if err != nil {
		t.Fatal(err)
	}
	return bundle{sb.Env, sb.Srv, s, hooks}
}

func (b bundle) do(t *testing.T, method, path, auth string, body any) (int, http.Header, []byte) {
	t.Helper()
	return simtest.Do(t, method, b.srv.URL+"/sandbox/jira"+path, auth, body)
}

func TestCreateSearchCommentTransition(t *testing.T) {
	t.Parallel()
	b := setup(t)
	auth := wire.BasicAuth("bot@example.com", "tok")
	desc := wire.Paragraphs("Order 123 arrived damaged")
	create := wire.CreateIssueRequest{Fields: wire.IssueFields{Project: wire.Ref{Key: "CS"}, IssueType: wire.Ref{Name: "Task"},
		Summary: "Damaged parcel", Description: &desc, Labels: []string{"omnibus-conv-1"}}}
	st, _, body := b.do(t, "POST", wire.PathIssue, auth, create)
	c, err := wire.ParseCreated(body)
	if st != 201 || err != nil || c.Key != "CS-1" {
		t.Fatalf("%d %s %v", st, body, err)
	}
	// Jira does not deduplicate: a second create is a second issue.
	if st, _, _ := b.do(t, "POST", wire.PathIssue, auth, create); st != 201 || len(b.sim.Issues()) != 2 {
		t.Fatal("second create")
	}
	st, _, body = b.do(t, "POST", wire.PathSearch, auth, wire.SearchRequest{JQL: `project = "CS" AND labels = "omnibus-conv-1"`, MaxResults: 5})
	sr, err := wire.ParseSearch(body)
	if st != 200 || err != nil || len(sr.Issues) != 2 {
		t.Fatalf("search %d %s %v", st, body, err)
	}
	st, _, body = b.do(t, "POST", wire.PathSearch, auth, wire.SearchRequest{JQL: `summary ~ "x"`})
	if st != 400 {
		t.Fatalf("unsupported JQL answered %d %s", st, body)
	}
	st, _, body = b.do(t, "POST", wire.PathIssueKey+"CS-1/comment", auth, wire.AddCommentRequest{Body: wire.Paragraphs("called the customer")})
	if _, err := wire.ParseComment(body); st != 201 || err != nil {
		t.Fatalf("comment %d %s", st, body)
	}
	st, _, body = b.do(t, "GET", wire.PathIssueKey+"CS-1", auth, nil)
	if is, err := wire.ParseIssue(body); st != 200 || err != nil || is.Fields.Status.Name != "To Do" {
		t.Fatalf("get %d %s", st, body)
	}
	if err := b.sim.Transition(context.Background(), "CS-1", "Done"); err != nil {
		t.Fatal(err)
	}
	r, raw := <-b.hooks.Requests, <-b.hooks.Bodies
	if r.URL.Path != "/hooks/ticket/jira" || !wire.VerifyWebhook("hook-secret", raw, r.Header.Get(wire.HeaderSignature)) || r.Header.Get(wire.HeaderIdentifier) == "" {
		t.Fatalf("webhook %s %v", r.URL.Path, r.Header)
	}
	ev, err := wire.ParseWebhook(raw)
	if from, to, ok := ev.StatusChange(); err != nil || !ok || from != "To Do" || to != "Done" {
		t.Fatalf("%s %v", raw, err)
	}
}

func TestAuthValidationAndFaults(t *testing.T) {
	t.Parallel()
	b := setup(t)
	st, _, body := b.do(t, "POST", wire.PathIssue, wire.BasicAuth("bot@example.com", "wrong"), map[string]any{})
	if e := wire.DecodeError(st, body); !errors.Is(e, wire.ErrUnauthorized) {
		t.Fatalf("%d %s", st, body)
	}
	auth := wire.BasicAuth("bot@example.com", "tok")
	st, _, body = b.do(t, "POST", wire.PathIssue, auth, map[string]any{"fields": map[string]any{"project": map[string]string{"key": "CS"}, "issuetype": map[string]string{"name": "Task"}, "description": "plain"}})
	e := wire.DecodeError(st, body)
	if st != 400 || e.Body.Errors["summary"] != "You must specify a summary of the issue." || e.Body.Errors["description"] == "" {
		t.Fatalf("%d %s", st, body)
	}
	_ = b.env.SetFault("jira "+jira.OpCreate, sim.Fault{ErrorRatio: 1, Code: "429:7"})
	st, h, _ := b.do(t, "POST", wire.PathIssue, auth, map[string]any{})
	if st != 429 || h.Get("Retry-After") != "7" {
		t.Fatalf("429 fault: %d %v", st, h)
	}
}

// TestSearchOrderLagAndProcessedFaults: ORDER BY, the search index lag, and the "processed" faults
// that create the issue and lose the answer (Jira has no idempotency key: a blind retry would make
// a second issue, which is why the connector searches before it creates again).
func TestSearchOrderLagAndProcessedFaults(t *testing.T) {
	t.Parallel()
	var clock atomic.Int64 // milliseconds added to the real clock
	mux := http.NewServeMux()
	env := sim.NewEnv(mux, "", nil, 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s, err := jira.New(env, jira.Config{Email: "bot@example.com", APIToken: "tok", SearchLag: time.Second,
		Now: func() time.Time { return time.Now().Add(time.Duration(clock.Load()) * time.Millisecond) }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	b := bundle{env: env, srv: srv, sim: s}
	auth := wire.BasicAuth("bot@example.com", "tok")
	create := wire.CreateIssueRequest{Fields: wire.IssueFields{Project: wire.Ref{Key: "CS"}, IssueType: wire.Ref{Name: "Task"},
		Summary: "Damaged parcel", Labels: []string{"omnibus-conv-7"}}}
	search := func(jql string) (int, []string) {
		st, _, body := b.do(t, "POST", wire.PathSearch, auth, wire.SearchRequest{JQL: jql, MaxResults: 2})
		r, _ := wire.ParseSearch(body)
		var keys []string
		for _, is := range r.Issues {
			keys = append(keys, is.Key)
		}
		return st, keys
	}
	const q = `project = "CS" AND labels = "omnibus-conv-7"`
	opKey := jira.Vendor + " " + jira.OpCreate
	for i, code := range []string{"processed", "processed_502", "processed_drop", ""} {
		_ = env.SetFault(opKey, sim.Fault{ErrorRatio: 1, Code: code})
		raw, _ := json.Marshal(create)
		req, _ := http.NewRequest("POST", srv.URL+"/sandbox/jira"+wire.PathIssue, bytes.NewReader(raw))
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		switch {
		case code == "processed_drop":
			if err == nil {
				t.Fatalf("%q answered %d, want a dropped connection", code, resp.StatusCode)
			}
		case err != nil || resp.StatusCode != map[string]int{"processed": 500, "processed_502": 502, "": 500}[code]:
			t.Fatalf("%q: %v %v", code, resp, err)
		default:
			resp.Body.Close()
		}
		if n := len(s.Issues()); n != min(i+1, 3) {
			t.Fatalf("%q: %d issues", code, n)
		}
	}
	_ = env.SetFault(opKey, sim.Fault{})
	// The index lags: nothing is found yet, then everything.
	if st, keys := search(q); st != 200 || len(keys) != 0 {
		t.Fatalf("within the lag: %d %v", st, keys)
	}
	clock.Add(1000)
	if st, keys := search(q + " ORDER BY key DESC"); st != 200 || fmt.Sprint(keys) != "[CS-3 CS-2]" {
		t.Fatalf("desc: %d %v", st, keys)
	}
	if st, keys := search(q + " order by created asc"); st != 200 || fmt.Sprint(keys) != "[CS-1 CS-2]" {
		t.Fatalf("asc: %d %v", st, keys)
	}
	for _, bad := range []string{"ORDER BY key", q + " ORDER BY summary", q + " ORDER key", q + " ORDER BY key UP", q + " ORDERX BY key"} {
		if st, _ := search(bad); st != 400 {
			t.Fatalf("%q answered %d", bad, st)
		}
	}
}
