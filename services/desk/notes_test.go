package desk_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/services/desk/internal/store"
)

// stream opens token's /api/events (a Server-Sent Events stream) and returns its notices.
func stream(t *testing.T, d *deskBundle, token string) <-chan map[string]any {
	t.Helper()
	req, _ := http.NewRequest("GET", d.url+"/api/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req) //nolint:bodyclose // closed at cleanup; the reader goroutine reads it until then
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	notices := make(chan map[string]any, 256)
	go func() {
		defer close(notices)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var n map[string]any
				if json.Unmarshal([]byte(line), &n) == nil {
					notices <- n
				}
			}
		}
	}()
	return notices
}

// A private note: on the timeline, with the known agents it @mentions, who — and only who — are
// told on their event stream; rebuilt from the log like everything else (it is an event).
func TestNotesAndMentions(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(quiet()))
	d := startDesk(t, b, map[string]string{"DESK_ASSIGN": "false"})
	w := newWorld(t, b)
	w.customer("韩梅梅", nil)
	w.opened("wechatkf")
	bustest.WaitFor(t, 10*time.Second, "the conversation on the desk", func() bool {
		return d.call(t, d.token, "GET", "/api/conversations/"+w.conv, nil, nil) == 200
	})
	super := stream(t, d, d.super)
	li := stream(t, d, d.token)

	path := "/api/conversations/" + w.conv + "/notes"
	var n store.Note
	if code := d.call(t, d.token, "POST", path, map[string]any{"text": "VIP，要求周五前退款 @supervisor-wang 请批准; cc @nobody."}, &n); code != 202 {
		t.Fatalf("note: %d", code)
	}
	if n.Author != "agent-li" || len(n.Mentions) != 1 || n.Mentions[0] != "supervisor-wang" {
		t.Fatalf("note %+v: want author agent-li, mentions [supervisor-wang] (nobody is no agent)", n)
	}
	for name, body := range map[string]any{"empty": map[string]any{"text": "  "}, "too long": map[string]any{"text": strings.Repeat("字", 4001)}} {
		if code := d.call(t, d.token, "POST", path, body, nil); code != 400 {
			t.Errorf("%s note: %d, want 400", name, code)
		}
	}
	if code := d.call(t, d.token, "POST", "/api/conversations/00000000-0000-4000-8000-000000000000/notes", map[string]any{"text": "x"}, nil); code != 404 {
		t.Errorf("note on no conversation: %d, want 404", code)
	}

	deadline := time.After(15 * time.Second)
	for mentioned := false; !mentioned; {
		select {
		case m, ok := <-super:
			if !ok {
				t.Fatal("the supervisor's stream ended")
			}
			mentioned = m["type"] == "desk.mention" && m["conversation_id"] == w.conv
		case <-deadline:
			t.Fatal("the mentioned supervisor was not told")
		}
	}
	var timeline struct {
		Items []store.TimelineItem `json:"items"`
	}
	bustest.WaitFor(t, 10*time.Second, "the note on the timeline", func() bool {
		d.call(t, d.token, "GET", "/api/conversations/"+w.conv+"/timeline", nil, &timeline)
		for _, it := range timeline.Items {
			if it.Kind == "note" && it.Note != nil && it.Note.NoteID == n.NoteID {
				return true
			}
		}
		return false
	})
	// The writer's own stream saw the note but no mention (nobody mentioned agent-li).
	for drained := false; !drained; {
		select {
		case m := <-li:
			if m["type"] == "desk.mention" {
				t.Fatalf("agent-li was told of a mention: %v", m)
			}
		default:
			drained = true
		}
	}
}

// TestBrowserNote: the agent's draft survives an update; she inserts a canned response by its
// shortcut (/ref, then a click on it), filled in for the customer; she ticks "Private note", writes one that @mentions a colleague and
// adds it; it shows on the timeline as a note, the mention marked, in Chinese and English.
func TestBrowserNote(t *testing.T) {
	t.Parallel()
	br, b, d, ctx, run := browserDesk(t, "the desk's private note test", "desk-notes")
	w := newWorld(t, b)
	w.customer("韩梅梅", nil)
	w.opened("wechatkf")
	w.inbound("wechatkf", "wechat_openid", "oWx-note", "我的退款什么时候到？", time.Now().UTC().Add(-time.Minute), "wechatkf")
	assignAndLogIn(t, d, run, w.conv, "zh")
	row := `li.conv[data-id="` + w.conv + `"]`
	run("open the conversation", chromedp.WaitVisible(css(row)), chromedp.Click(css(row)), chromedp.WaitVisible(css("#timeline .msg.inbound")))
	// A draft survives the customer writing meanwhile (the conversation re-renders).
	run("start a reply", chromedp.SendKeys(css("#reply-text"), "您好，退款"))
	w.inbound("wechatkf", "wechat_openid", "oWx-note", "在吗？", time.Now().UTC(), "wechatkf")
	bustest.WaitFor(t, 15*time.Second, "the new message on the timeline", func() bool {
		tl, err := chromedp.Run(ctx, chromedp.Text(css("#timeline")))
		return err == nil && strings.Contains(tl, "在吗")
	})
	if draft, err := chromedp.Run(ctx, chromedp.Value(css("#reply-text"))); err != nil || draft != "您好，退款" {
		br.Shot(t, "failed")
		t.Fatalf("the draft after an update: %q, %v", draft, err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(document.querySelector("#reply-text").value = "") === ""`)); err != nil {
		t.Fatal(err)
	}
	// A canned response by its shortcut, filled in for this customer.
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if code := d.call(t, "", "POST", "/desk/dev/login?agent=supervisor-wang&role=supervisor&format=token", nil, &tok); code != 200 {
		t.Fatalf("dev login: %d", code)
	}
	if code := d.call(t, tok.AccessToken, "POST", "/api/canned", map[string]any{"shortcut": "refund", "title": "退款时效",
		"text": "{{customer.name}}您好，退款会在 1-3 个工作日内原路退回。", "shared": true}, nil); code != 202 {
		t.Fatalf("shared canned response: %d", code)
	}
	run("type /ref", chromedp.Focus(css("#reply-text")), chromedp.SendKeys(css("#reply-text"), "/ref"),
		chromedp.WaitVisible(css("#canned-picker li.active")))
	br.Shot(t, "canned-picker")
	run("pick it", chromedp.Click(css("#canned-picker li.active")), chromedp.WaitNotPresent(css("#canned-picker")))
	if v, err := chromedp.Run(ctx, chromedp.Value(css("#reply-text"))); err != nil || v != "韩梅梅您好，退款会在 1-3 个工作日内原路退回。" {
		t.Fatalf("the reply box after picking /refund: %q, %v", v, err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(document.querySelector("#reply-text").value = "") === ""`)); err != nil {
		t.Fatal(err)
	}
	run("write a note", chromedp.Click(css("#reply-note")), chromedp.WaitVisible(css("#reply-form.note-mode")),
		chromedp.SendKeys(css("#reply-text"), "VIP 客户 @supervisor-wang 请批准退款"), chromedp.Click(css("#reply-send")),
		chromedp.WaitVisible(css("#timeline .note .mention")))
	label, err := chromedp.Run(ctx, chromedp.Text(css("#timeline .note .note-label")))
	if err != nil {
		br.Shot(t, "failed")
		t.Fatal(err)
	}
	mention, err := chromedp.Run(ctx, chromedp.Text(css("#timeline .note .mention")))
	if err != nil {
		t.Fatal(err)
	}
	if label != "内部备注" || mention != "@supervisor-wang" {
		t.Fatalf("note label %q, mention %q", label, mention)
	}
	br.Shot(t, "note-zh")
	run("English", chromedp.Navigate(d.url+"/?lang=en"), chromedp.WaitVisible(css(row)), chromedp.Click(css(row)),
		chromedp.WaitVisible(css("#timeline .note")))
	if label, err := chromedp.Run(ctx, chromedp.Text(css("#timeline .note .note-label"))); err != nil || label != "Private note" {
		t.Fatalf("English note label %q: %v", label, err)
	}
	// Nothing went to the customer.
	if sent := b.Events(t, bus.StreamOut, "omni.out.>"); len(sent) != 0 {
		t.Fatalf("a note was sent to the customer: %d send commands", len(sent))
	}
}
