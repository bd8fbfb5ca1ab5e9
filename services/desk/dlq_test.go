package desk_test

import (
	"context"
	"encoding/json"
	"fmt"
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
)

const (
	dlqPhone   = "+8613800138000"
	dlqSubject = "omni.out.sms.message.send" // OMNI_OUT; nothing consumes it in these tests
)

// deadLetter puts an event that service could not publish on omni.dlq.<service> and returns
// its event id.
func deadLetter(t *testing.T, b *bustest.Bundle, service, reason string) string {
	t.Helper()
	id := uuid.NewString()
	e, err := event.New("omni.channel.message.send.requested", "/services/"+service, map[string]any{
		"channel": "sms", "to": map[string]string{"kind": "phone", "value": dlqPhone},
		"message": map[string]any{"type": "text", "text": "call me on " + dlqPhone + " or mail zhang.wei@example.com"}}, event.WithID(id))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Client.DeadLetterEvent(context.Background(), service, dlqSubject, e, reason); err != nil {
		t.Fatal(err)
	}
	return id
}

type dlqList struct {
	Total   int `json:"total"`
	Summary []struct {
		Service, Reason string
		Count           int
	} `json:"summary"`
	Letters []struct {
		Seq             uint64 `json:"seq"`
		Service         string `json:"service"`
		Reason          string `json:"reason"`
		OriginalSubject string `json:"original_subject"`
		EventID         string `json:"event_id"`
		EventType       string `json:"event_type"`
	} `json:"letters"`
}

// lastEventID returns the event id of the last message on subject in stream.
func lastEventID(t *testing.T, b *bustest.Bundle, stream, subject string) string {
	t.Helper()
	st, err := b.Client.JetStream().Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(context.Background(), subject)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range m.Header {
		if strings.EqualFold(k, "ce-id") {
			return v[0]
		}
	}
	return ""
}

// dlqActions returns the omni.ops.dlq.action events on the bus.
func dlqActions(t *testing.T, b *bustest.Bundle) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, e := range b.Events(t, bus.StreamOps, "omni.ops.dlq.action") {
		var m map[string]any
		if err := json.Unmarshal(e.Data(), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func TestDeadLettersAPI(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(quiet()))
	d := startDesk(t, b, map[string]string{"DESK_ASSIGN": "false"})
	idA := deadLetter(t, b, "sms", "permanent: template rejected")
	idB := deadLetter(t, b, "sms", "permanent: template rejected")
	idC := deadLetter(t, b, "crm", "crm lookup: 503 for "+dlqPhone)

	var list dlqList
	if code := d.call(t, d.token, "GET", "/api/ops/dlq", nil, &map[string]any{}); code != 403 {
		t.Fatalf("agent listed dead letters: %d", code)
	}
	var e struct{ Error, Reason string }
	if code := d.call(t, d.token, "POST", "/api/ops/dlq/redrive", map[string]any{"seqs": []int{1}}, &e); code != 403 || e.Reason == "" {
		t.Fatalf("agent redrove: %d %+v", code, e)
	}
	if code := d.call(t, d.super, "GET", "/api/ops/dlq", nil, &list); code != 200 || list.Total != 3 || len(list.Letters) != 3 {
		t.Fatalf("list: %d %+v", code, list)
	}
	if len(list.Summary) != 2 || list.Summary[0].Service != "sms" || list.Summary[0].Count != 2 || list.Summary[0].Reason != "permanent: template rejected" {
		t.Fatalf("summary: %+v", list.Summary)
	}
	seq := map[string]uint64{}
	for _, l := range list.Letters {
		seq[l.EventID] = l.Seq
		if l.OriginalSubject != dlqSubject || l.EventType != "omni.channel.message.send.requested" || strings.Contains(l.Reason, "13800138000") {
			t.Fatalf("letter %+v", l)
		}
	}
	t.Run("filters", func(t *testing.T) {
		for q, want := range map[string][]string{"service=crm": {idC}, "reason=TEMPLATE": {idA, idB}, "service=sms&limit=1": {idA},
			"subject=omni.out.*.message.send": {idA, idB, idC}, "subject=omni.in.>": nil} {
			var l dlqList
			if code := d.call(t, d.super, "GET", "/api/ops/dlq?"+q, nil, &l); code != 200 || l.Total != 3 {
				t.Fatalf("%s: %d %+v", q, code, l)
			}
			var got []string
			for _, x := range l.Letters {
				got = append(got, x.EventID)
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s: %v, want %v", q, got, want)
			}
		}
		for _, q := range []string{"limit=0", "limit=x", "service=a.b"} {
			if code := d.call(t, d.super, "GET", "/api/ops/dlq?"+q, nil, &e); code != 400 || e.Reason == "" {
				t.Errorf("%s: %d %+v", q, code, e)
			}
		}
	})
	t.Run("inspect masked", func(t *testing.T) {
		var got struct {
			Seq     uint64            `json:"seq"`
			Reason  string            `json:"reason"`
			EventID string            `json:"event_id"`
			Headers map[string]string `json:"headers"`
			Data    string            `json:"data"`
		}
		if code := d.call(t, d.super, "GET", fmt.Sprintf("/api/ops/dlq/%d", seq[idC]), nil, &got); code != 200 || got.EventID != idC ||
			!strings.HasPrefix(got.Reason, "crm lookup: 503 for ") || strings.Contains(got.Reason, "13800138000") {
			t.Fatalf("inspect: %d %+v", code, got)
		}
		if strings.Contains(got.Data, dlqPhone) || strings.Contains(got.Data, "13800138000") || strings.Contains(got.Data, "zhang.wei@example.com") {
			t.Errorf("personal data shown: %s", got.Data)
		}
		if !json.Valid([]byte(got.Data)) || !strings.Contains(got.Data, "call me on") {
			t.Errorf("data: %s", got.Data)
		}
		if got.Headers["Omnibus-Dlq-Subject"] != dlqSubject || strings.Contains(got.Headers["Omnibus-Dlq-Reason"], "13800138000") || got.Headers["Ce-Id"] == "" && got.Headers["ce-id"] == "" {
			t.Errorf("headers: %v", got.Headers)
		}
		if code := d.call(t, d.super, "GET", "/api/ops/dlq/999999", nil, &e); code != 404 {
			t.Errorf("unknown seq: %d", code)
		}
		if code := d.call(t, d.super, "GET", "/api/ops/dlq/abc", nil, &e); code != 400 {
			t.Errorf("bad seq: %d", code)
		}
	})
	if t.Failed() {
		return
	}
	// Bad actions change nothing.
	for name, body := range map[string]any{"nothing chosen": map[string]any{}, "both": map[string]any{"seqs": []uint64{seq[idA]}, "service": "sms"},
		"zero seq": map[string]any{"seqs": []int{0}}, "unknown field": map[string]any{"seq": 1}} {
		if code := d.call(t, d.super, "POST", "/api/ops/dlq/redrive", body, &e); code != 400 || e.Reason == "" {
			t.Errorf("redrive %s: %d %+v", name, code, e)
		}
	}
	if code := d.call(t, d.super, "POST", "/api/ops/dlq/discard", map[string]any{"seqs": []uint64{seq[idB]}, "note": "  "}, &e); code != 400 || !strings.Contains(e.Reason, "note") {
		t.Fatalf("discard without a note: %d %+v", code, e)
	}
	if code := d.call(t, d.super, "POST", "/api/ops/dlq/redrive", map[string]any{"seqs": []uint64{seq[idA], 999999}}, &e); code != 404 {
		t.Fatalf("redrive of an unknown seq: %d %+v", code, e)
	}
	if n := b.StoredCount(t, bus.StreamDLQ, ">"); n != 3 || len(dlqActions(t, b)) != 0 {
		t.Fatalf("refused actions acted: %d letters", n)
	}

	// Redrive one: back on its original subject, gone from OMNI_DLQ, audited.
	var res struct {
		Count        int      `json:"count"`
		Seqs         []uint64 `json:"seqs"`
		Error        string   `json:"error"`
		AuditEventID string   `json:"audit_event_id"`
	}
	if code := d.call(t, d.super, "POST", "/api/ops/dlq/redrive", map[string]any{"seqs": []uint64{seq[idA]}}, &res); code != 200 || res.Count != 1 || res.Error != "" || res.AuditEventID == "" {
		t.Fatalf("redrive: %d %+v", code, res)
	}
	if n := b.StoredCount(t, bus.StreamOut, dlqSubject); n != 1 {
		t.Fatalf("redriven to %s: %d messages", dlqSubject, n)
	}
	if id := lastEventID(t, b, bus.StreamOut, dlqSubject); id != idA {
		t.Fatalf("redriven %s, want %s", id, idA)
	}
	// Discard one with a note.
	if code := d.call(t, d.super, "POST", "/api/ops/dlq/discard", map[string]any{"seqs": []uint64{seq[idB]}, "note": "pilot test traffic"}, &res); code != 200 || res.Count != 1 {
		t.Fatalf("discard: %d %+v", code, res)
	}
	if code := d.call(t, d.super, "GET", "/api/ops/dlq", nil, &list); code != 200 || list.Total != 1 || list.Letters[0].EventID != idC {
		t.Fatalf("left: %d %+v", code, list)
	}
	if n := b.StoredCount(t, bus.StreamOut, dlqSubject); n != 1 {
		t.Fatalf("a discard redrove: %d", n)
	}
	var acts []map[string]any
	bustest.WaitFor(t, 5*time.Second, "two omni.ops.dlq.action events", func() bool { acts = dlqActions(t, b); return len(acts) == 2 })
	red, dis := acts[0], acts[1]
	if red["action"] != "redrive" || red["operator"] != "supervisor-wang" || red["count"] != 1.0 || fmt.Sprint(red["event_ids"]) != fmt.Sprint([]string{idA}) ||
		fmt.Sprint(red["services"]) != "[sms]" || fmt.Sprint(red["seqs"]) != fmt.Sprint([]uint64{seq[idA]}) {
		t.Errorf("redrive action: %v", red)
	}
	if dis["action"] != "discard" || dis["note"] != "pilot test traffic" || fmt.Sprint(dis["event_ids"]) != fmt.Sprint([]string{idB}) ||
		fmt.Sprint(dis["reasons"]) != "[permanent: template rejected]" {
		t.Errorf("discard action: %v", dis)
	}
	// By selection: the crm letters.
	if code := d.call(t, d.super, "POST", "/api/ops/dlq/discard", map[string]any{"service": "crm", "note": "crm sandbox outage, replayed by hand"}, &res); code != 200 || res.Count != 1 {
		t.Fatalf("discard by service: %d %+v", code, res)
	}
	if code := d.call(t, d.super, "POST", "/api/ops/dlq/redrive", map[string]any{"service": "crm"}, &e); code != 404 {
		t.Fatalf("redrive of an empty selection: %d %+v", code, e)
	}
	bustest.WaitFor(t, 5*time.Second, "three omni.ops.dlq.action events", func() bool { acts = dlqActions(t, b); return len(acts) == 3 })
	if f, _ := acts[2]["filter"].(map[string]any); f["service"] != "crm" {
		t.Errorf("selection action: %v", acts[2])
	}
}

// TestBrowserDeadLetters works the dead letters on /ops as a supervisor: inspects one (masked),
// redrives it, and discards the other with a note.
func TestBrowserDeadLetters(t *testing.T) {
	t.Parallel()
	br := browsertest.Start(t, "the desk's dead-letter page test", "desk-e2e")
	b := bustest.New(t, bus.WithLogger(quiet()))
	d := startDesk(t, b, map[string]string{"DESK_DEV_LOGIN": "true", "DESK_ASSIGN": "false"})
	idA := deadLetter(t, b, "sms", "permanent: template rejected")
	idB := deadLetter(t, b, "crm", "crm lookup: 503")
	letters, err := b.Client.ListDeadLetters(context.Background(), bus.DeadLetterFilter{})
	if err != nil || len(letters) != 2 {
		t.Fatalf("dead letters: %d %v", len(letters), err)
	}
	seqA, seqB := letters[0].Seq, letters[1].Seq

	ctx, cancel := context.WithTimeout(br.Ctx, 90*time.Second)
	defer cancel()
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			br.Shot(t, "dlq-failed")
			t.Fatalf("%s: %v", what, err)
		}
	}
	waitIn := func(what, sel, want string) {
		t.Helper()
		q, _ := json.Marshal(sel)
		w, _ := json.Marshal(want)
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`(() => { const e = document.querySelector(`+string(q)+`);
			return !!e && e.textContent.includes(`+string(w)+`) })()`, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
			br.Shot(t, "dlq-failed")
			t.Fatalf("%s: %v", what, err)
		}
	}
	row := func(seq uint64) string { return fmt.Sprintf(`#dlq-rows tr[data-seq="%d"]`, seq) }
	run("the ops page", chromedp.EmulateViewport(1280, 1000),
		chromedp.Navigate(d.url+"/desk/dev/login?agent=supervisor-wang&role=supervisor&next=%2Fops%3Flang%3Den"),
		chromedp.WaitVisible(chromedp.CSS(row(seqA))), chromedp.WaitVisible(chromedp.CSS(row(seqB))),
		chromedp.WaitNotVisible(chromedp.CSS("#dlq-note")), chromedp.WaitNotVisible(chromedp.CSS("#dlq-detail")))
	waitIn("the summary", "#dlq-summary", "permanent: template rejected × 1")
	waitIn("the total", "#dlq-total", "2 in total")

	run("inspect", chromedp.Click(chromedp.CSS(row(seqA)+" td.reason")), chromedp.WaitVisible(chromedp.CSS("#dlq-detail pre.data")))
	waitIn("the event", "#dlq-detail pre.data", "call me on")
	waitIn("the error", "#dlq-detail .err", "permanent: template rejected")
	detail, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#dlq-detail")))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(detail, "13800138000") || strings.Contains(detail, "zhang.wei@example.com") || !strings.Contains(detail, idA) {
		t.Errorf("detail shows personal data or lacks the event id: %s", detail)
	}
	br.Shot(t, "08-dlq-inspect")

	run("redrive", chromedp.Click(chromedp.CSS(row(seqA)+` input[type="checkbox"]`)), chromedp.Click(chromedp.CSS("#dlq-redrive")))
	waitIn("the redrive result", "#dlq-result", "Redrove 1")
	if id := lastEventID(t, b, bus.StreamOut, dlqSubject); id != idA {
		t.Fatalf("redriven %q, want %s", id, idA)
	}

	// The list reloads after the redrive (the redriven letter leaves it): act on the new rows,
	// not on nodes the reload replaces.
	run("the list after the redrive", chromedp.WaitNotPresent(chromedp.CSS(row(seqA))), chromedp.WaitVisible(chromedp.CSS(row(seqB))))
	run("discard asks for a note", chromedp.Click(chromedp.CSS(row(seqB)+` input[type="checkbox"]`)), chromedp.Click(chromedp.CSS("#dlq-discard")),
		chromedp.WaitVisible(chromedp.CSS("#dlq-note")), chromedp.SendKeys(chromedp.CSS("#dlq-note"), "crm sandbox outage, replayed by hand"))
	br.Shot(t, "09-dlq-discard-note")
	run("discard", chromedp.Click(chromedp.CSS("#dlq-note-ok")))
	waitIn("the discard result", "#dlq-result", "Discarded 1")
	waitIn("the empty queue", "#dlq-rows", "No dead letters")
	br.Shot(t, "10-dlq-worked")

	var acts []map[string]any
	bustest.WaitFor(t, 5*time.Second, "two omni.ops.dlq.action events", func() bool { acts = dlqActions(t, b); return len(acts) == 2 })
	if acts[0]["action"] != "redrive" || acts[1]["action"] != "discard" || acts[1]["note"] != "crm sandbox outage, replayed by hand" ||
		fmt.Sprint(acts[1]["event_ids"]) != fmt.Sprint([]string{idB}) || acts[1]["operator"] != "supervisor-wang" {
		t.Errorf("actions: %v", acts)
	}
}
