package zendesk_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/wire/zendesk"
)

// The vendor doc's create body (vendors/README.md §12.2), verbatim.
const docCreate = `{"ticket":{"subject":"My printer is on fire!","comment":{"body":"The smoke is very colorful."},"priority":"urgent","requester":{"name":"..","email":".."},"tags":["cc"]}}`

func TestDocCreateBody(t *testing.T) {
	t.Parallel()
	var req zendesk.CreateRequest
	if err := json.Unmarshal([]byte(docCreate), &req); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(req)
	if string(b) != docCreate {
		t.Fatalf("re-encoded body differs:\n got %s\nwant %s", b, docCreate)
	}
}

func TestBasicAuth(t *testing.T) {
	t.Parallel()
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(zendesk.BasicAuth("agent@example.com", "tok"), "Basic "))
	if string(raw) != "agent@example.com/token:tok" {
		t.Fatalf("%s", raw)
	}
}

func TestParseTicketAndErrors(t *testing.T) {
	t.Parallel()
	body := `{"ticket":{"id":35436,"url":"https://example.zendesk.com/api/v2/tickets/35436.json","subject":"My printer is on fire!","description":"The smoke is very colorful.","status":"new","priority":"urgent","requester_id":20978392,"external_id":"omnibus:conversation:1","tags":["cc"],"created_at":"2009-07-20T22:55:29Z","updated_at":"2009-07-20T22:55:29Z"},"audit":{"id":1,"ticket_id":35436,"created_at":"2009-07-20T22:55:29Z"}}`
	r, err := zendesk.ParseTicket([]byte(body))
	if err != nil || r.Ticket.ID != 35436 || *r.Ticket.ExternalID != "omnibus:conversation:1" || r.Ticket.Status != "new" {
		t.Fatalf("%+v %v", r, err)
	}
	if _, err := zendesk.ParseTicket([]byte(`{"ticket":{}}`)); !errors.Is(err, zendesk.ErrMalformed) {
		t.Fatal(err)
	}
	l, err := zendesk.ParseList([]byte(`{"tickets":[` + body[10:len(body)-len(`,"audit":{"id":1,"ticket_id":35436,"created_at":"2009-07-20T22:55:29Z"}}`)] + `],"next_page":null,"count":1}`))
	if err != nil || len(l.Tickets) != 1 || l.Count != 1 {
		t.Fatalf("%+v %v", l, err)
	}
	e := zendesk.DecodeError(401, []byte(`{"error":"Couldn't authenticate you"}`), "")
	if !errors.Is(e, zendesk.ErrUnauthorized) || e.Body.Error != zendesk.MsgUnauthorized {
		t.Fatal(e)
	}
	e = zendesk.DecodeError(429, []byte("Rate limit for ticket updates exceeded, please wait before updating this ticket again"), "93")
	if !errors.Is(e, zendesk.ErrRateLimited) || e.RetryAfter != 93*time.Second || !strings.Contains(e.Error(), "Rate limit") {
		t.Fatal(e, e.RetryAfter)
	}
}

func TestWebhook(t *testing.T) {
	t.Parallel()
	body, err := os.ReadFile("testdata/status_changed.json")
	if err != nil {
		t.Fatal(err)
	}
	ts := "2024-09-03T07:59:07Z"
	sig := zendesk.WebhookSignature("dGhpc19zZWNyZXQ", ts, body)
	if !zendesk.VerifyWebhook("dGhpc19zZWNyZXQ", ts, body, sig) || zendesk.VerifyWebhook("dGhpc19zZWNyZXQ", "2024-09-03T07:59:08Z", body, sig) {
		t.Fatal("VerifyWebhook")
	}
	// SELF-COMPUTED: base64(HMAC-SHA256("secret", "1700000000" + "{}")), recomputed with Python hmac.
	if got := zendesk.WebhookSignature("secret", "1700000000", []byte("{}")); got != "RM6OD3UEVWrrFT2bdZ2X/EyvymK1UHHNZgnc1eHXdHk=" {
		t.Fatalf("vector: %s", got)
	}
	w, err := zendesk.ParseWebhook(body)
	if err != nil {
		t.Fatal(err)
	}
	if w.Type != zendesk.EventTicketStatusChanged || w.Event.Current != "OPEN" || w.Event.Previous != "NEW" || w.Detail.ID != "35436" {
		t.Fatalf("%+v", w)
	}
	at, err := zendesk.ParseWebhookTimestamp(ts)
	if err != nil || at.Unix() != 1725350347 {
		t.Fatal(at, err)
	}
	if _, err := zendesk.ParseWebhookTimestamp("soon"); !errors.Is(err, zendesk.ErrMalformed) {
		t.Fatal(err)
	}
}

func FuzzParseWebhook(f *testing.F) {
	body, _ := os.ReadFile("testdata/status_changed.json")
	f.Add(body)
	f.Add([]byte(`{"type":"x","id":"1","detail":{"id":"2"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := zendesk.ParseWebhook(b)
		if err != nil {
			if !errors.Is(err, zendesk.ErrMalformed) {
				t.Fatalf("unexpected error kind %v", err)
			}
			return
		}
		if w.Type == "" || w.ID == "" || w.Detail.ID == "" {
			t.Fatal("incomplete webhook accepted")
		}
	})
}

func FuzzParseResponses(f *testing.F) {
	f.Add([]byte(`{"ticket":{"id":1,"status":"open","external_id":null}}`))
	f.Add([]byte(`{"tickets":[{"id":1,"status":"open"}],"count":1}`))
	f.Add([]byte(`{"error":"RecordInvalid","description":"Record validation errors","details":{"base":[{"description":"x"}]}}`))
	f.Add([]byte(`{"error":"IdempotentRequestError","description":"Request parameters don't match the given idempotency key"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := zendesk.ParseTicket(b); err == nil && (r.Ticket.ID <= 0 || r.Ticket.Status == "") {
			t.Fatal("ticket without id")
		}
		if l, err := zendesk.ParseList(b); err == nil {
			for _, tk := range l.Tickets {
				if tk.ID <= 0 {
					t.Fatal("listed ticket without id")
				}
			}
		}
		if e := zendesk.DecodeError(429, b, "x"); e.Error() == "" || e.RetryAfter != 0 || e.IdempotencyConflict() {
			t.Fatal("DecodeError")
		}
		if e := zendesk.DecodeError(400, b, ""); e.IdempotencyConflict() != (e.Body.Error == zendesk.MsgIdempotentRequestError) {
			t.Fatal("IdempotencyConflict")
		}
	})
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	if k := zendesk.IdempotencyKey("omnibus-ticket:", "c1d2e3f4"); k != "omnibus-ticket:c1d2e3f4" {
		t.Fatal(k)
	}
	long := strings.Repeat("x", 300)
	k := zendesk.IdempotencyKey("omnibus-ticket:", long)
	if len(k) > zendesk.MaxIdempotencyKey || !strings.HasPrefix(k, "omnibus-ticket:sha256:") || k != zendesk.IdempotencyKey("omnibus-ticket:", long) ||
		k == zendesk.IdempotencyKey("omnibus-ticket:", long+"y") {
		t.Fatalf("%q", k)
	}
	if k := zendesk.IdempotencyKey(strings.Repeat("p", 300), "id"); len(k) > zendesk.MaxIdempotencyKey {
		t.Fatalf("%d bytes", len(k))
	}
	// Zendesk's answer to a key reused with another body.
	body := []byte(`{"error":"IdempotentRequestError","description":"Request parameters don't match the given idempotency key"}`)
	if e := zendesk.DecodeError(400, body, ""); !e.IdempotencyConflict() || !errors.Is(e, &zendesk.Error{Status: 400}) {
		t.Fatalf("%+v", e)
	}
	if e := zendesk.DecodeError(422, []byte(`{"error":"RecordInvalid"}`), ""); e.IdempotencyConflict() {
		t.Fatal("422 is no idempotency conflict")
	}
}
