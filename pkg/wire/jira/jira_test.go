package jira_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/wire/jira"
)

// The vendor doc's v3 create body (vendors/README.md §12.1), verbatim.
const docCreate = `{"fields":{"project":{"key":"CS"},"issuetype":{"name":"Task"},"summary":"Customer reports damaged parcel",
 "description":{"type":"doc","version":1,"content":[{"type":"paragraph","content":[{"type":"text","text":"Order 123 ..."}]}]},
 "labels":["contact-center"],"priority":{"name":"High"}}}`

func TestDocCreateBodyRoundTrip(t *testing.T) {
	t.Parallel()
	var req jira.CreateIssueRequest
	if err := json.Unmarshal([]byte(docCreate), &req); err != nil {
		t.Fatal(err)
	}
	f := req.Fields
	if f.Project.Key != "CS" || f.IssueType.Name != "Task" || f.Priority.Name != "High" || f.Description.PlainText() != "Order 123 ..." {
		t.Fatalf("%+v", f)
	}
	if err := f.Description.Validate(); err != nil {
		t.Fatal(err)
	}
	built := jira.CreateIssueRequest{Fields: jira.IssueFields{Project: jira.Ref{Key: "CS"}, IssueType: jira.Ref{Name: "Task"},
		Summary: "Customer reports damaged parcel", Labels: []string{"contact-center"}, Priority: &jira.Ref{Name: "High"}}}
	d := jira.Paragraphs("Order 123 ...")
	built.Fields.Description = &d
	a, _ := json.Marshal(built)
	var want, got any
	_ = json.Unmarshal([]byte(docCreate), &want)
	_ = json.Unmarshal(a, &got)
	wa, _ := json.Marshal(want)
	ga, _ := json.Marshal(got)
	if string(wa) != string(ga) {
		t.Fatalf("built body differs from the doc's:\n got %s\nwant %s", ga, wa)
	}
}

func TestParagraphs(t *testing.T) {
	t.Parallel()
	d := jira.Paragraphs("line one\nline two\n\n\nsecond para\n")
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(d.Content) != 2 || d.Content[0].Content[1].Type != "hardBreak" {
		t.Fatalf("%+v", d)
	}
	if got := d.PlainText(); got != "line one\nline two\n\nsecond para" {
		t.Fatalf("PlainText %q", got)
	}
	if err := jira.Paragraphs("").Validate(); err != nil {
		t.Fatal(err)
	}
	bad := jira.Doc{Type: "doc", Version: 1, Content: []jira.Node{{Type: "paragraph", Content: []jira.Node{{Type: "text"}}}}}
	if bad.Validate() == nil {
		t.Fatal("empty text node accepted")
	}
}

func TestBasicAuth(t *testing.T) {
	t.Parallel()
	got := jira.BasicAuth("agent@example.com", "ATATT3xFfGF0")
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(got, "Basic "))
	if string(raw) != "agent@example.com:ATATT3xFfGF0" {
		t.Fatalf("%s", raw)
	}
}

func TestParseAnswers(t *testing.T) {
	t.Parallel()
	c, err := jira.ParseCreated([]byte(`{"id":"10000","key":"CS-24","self":"https://example.atlassian.net/rest/api/3/issue/10000"}`))
	if err != nil || c.Key != "CS-24" || c.ID != "10000" {
		t.Fatalf("%+v %v", c, err)
	}
	if _, err := jira.ParseCreated([]byte(`{"id":"1"}`)); !errors.Is(err, jira.ErrMalformed) {
		t.Fatal(err)
	}
	e := jira.DecodeError(400, []byte(`{"errorMessages":[],"errors":{"summary":"You must specify a summary of the issue."}}`))
	if !errors.Is(e, jira.ErrBadRequest) || !strings.Contains(e.Error(), "You must specify a summary") {
		t.Fatal(e)
	}
	if e := jira.DecodeError(401, []byte("Client must be authenticated to access this resource.")); !errors.Is(e, jira.ErrUnauthorized) || !strings.Contains(e.Error(), "authenticated") {
		t.Fatal(e)
	}
	is, err := jira.ParseIssue([]byte(`{"id":"10000","key":"CS-24","fields":{"status":{"name":"Done","statusCategory":{"key":"done"}}}}`))
	if err != nil || is.Fields.Status.StatusCategory.Key != "done" {
		t.Fatal(err)
	}
	sr, err := jira.ParseSearch([]byte(`{"issues":[{"id":"1","key":"CS-1","fields":{"labels":["x"]}}],"isLast":true}`))
	if err != nil || len(sr.Issues) != 1 {
		t.Fatal(err)
	}
	if got := jira.JQLString(`a"b\c`); got != `"a\"b\\c"` {
		t.Fatal(got)
	}
	if got := jira.LabelValue("omnibus-conv-", "a b"); got != "omnibus-conv-a_b" {
		t.Fatal(got)
	}
}

func TestWebhook(t *testing.T) {
	t.Parallel()
	body, err := os.ReadFile("testdata/issue_updated.json")
	if err != nil {
		t.Fatal(err)
	}
	sig := jira.WebhookSignature("It's a Secret to Everybody", body)
	if !strings.HasPrefix(sig, "sha256=") || len(sig) != 7+64 {
		t.Fatal(sig)
	}
	if !jira.VerifyWebhook("It's a Secret to Everybody", body, sig) || jira.VerifyWebhook("other", body, sig) {
		t.Fatal("VerifyWebhook")
	}
	// GitHub's documented X-Hub-Signature-256 example uses the same WebSub construction.
	if got := jira.WebhookSignature("It's a Secret to Everybody", []byte("Hello, World!")); got != "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17" {
		t.Fatalf("WebSub vector: %s", got)
	}
	w, err := jira.ParseWebhook(body)
	if err != nil {
		t.Fatal(err)
	}
	from, to, ok := w.StatusChange()
	if !ok || from != "To Do" || to != "In Progress" || w.Issue.Key != "CS-24" {
		t.Fatalf("%s→%s %v", from, to, ok)
	}
}

func FuzzParseWebhook(f *testing.F) {
	body, _ := os.ReadFile("testdata/issue_updated.json")
	f.Add(body)
	f.Add([]byte(`{"timestamp":1,"webhookEvent":"jira:issue_created","issue":{"id":"1","key":"A-1"}}`))
	f.Add([]byte(`{"changelog":{"items":[{"field":"status"}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := jira.ParseWebhook(b)
		if err != nil {
			if !errors.Is(err, jira.ErrMalformed) {
				t.Fatalf("unexpected error kind %v", err)
			}
			return
		}
		if w.Issue == nil || w.Issue.Key == "" || w.WebhookEvent == "" {
			t.Fatal("incomplete webhook accepted")
		}
		_, _, _ = w.StatusChange()
	})
}

func FuzzParseResponses(f *testing.F) {
	f.Add([]byte(`{"id":"10000","key":"CS-24","fields":{"status":{"name":"Done"}}}`))
	f.Add([]byte(`{"issues":[{"id":"1","key":"CS-1"}],"isLast":true}`))
	f.Add([]byte(`{"errorMessages":["x"],"errors":{"a":"b"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := jira.ParseCreated(b); err == nil && (c.ID == "" || c.Key == "") {
			t.Fatal("created without key")
		}
		if is, err := jira.ParseIssue(b); err == nil && (is.Fields.Status == nil || is.Key == "") {
			t.Fatal("issue without status")
		}
		if sr, err := jira.ParseSearch(b); err == nil {
			for _, is := range sr.Issues {
				if is.Key == "" {
					t.Fatal("search hit without key")
				}
			}
		}
		if e := jira.DecodeError(500, b); e.Error() == "" {
			t.Fatal("empty error")
		}
	})
}
