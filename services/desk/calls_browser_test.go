package desk_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
)

// assignAndLogIn assigns conversation conv to agent-li (a supervisor's API call) and logs her in
// on the page, in lang, through the development login.
func assignAndLogIn(t *testing.T, d *deskBundle, run func(string, ...chromedp.Action[chromedp.Void]), conv, lang string) {
	t.Helper()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if code := d.call(t, "", "POST", "/desk/dev/login?agent=supervisor-wang&role=supervisor&format=token", nil, &tok); code != 200 {
		t.Fatalf("dev login: %d", code)
	}
	bustest.WaitFor(t, 15*time.Second, "the conversation assigned to agent-li", func() bool {
		return d.call(t, tok.AccessToken, "POST", "/api/conversations/"+conv+"/assign", map[string]string{"agent_id": "agent-li"}, nil) == 200
	})
	run("dev login as agent-li", chromedp.EmulateViewport(1280, 800), chromedp.Navigate(d.url+"/?lang="+lang),
		chromedp.WaitVisible(css(`input[name="agent"][value="agent-li"]`)),
		chromedp.Click(css(`input[name="agent"][value="agent-li"]`)), chromedp.Click(css("#dev-login-submit")),
		chromedp.WaitVisible(css("#live.on")))
}

// TestBrowserCallControls: on an answered call of her conversation, the agent types an
// extension and presses Transfer, types a prompt and presses Play, then presses Hang up; each
// becomes its command on the bus, with her as the agent.
func TestBrowserCallControls(t *testing.T) {
	t.Parallel()
	br, b, d, ctx, run := browserDesk(t, "the desk's call controls test", "desk-calls")
	w := newWorld(t, b)
	id := uuid.NewString()
	start := time.Now().UTC().Add(-time.Minute)
	w.ringing(id, start, []string{"voice"}, map[string]any{})
	w.publish("omni.desk.call.updated", "omni.desk.call.updated", map[string]any{"call": w.callView(id, "answered", start.Add(3*time.Second),
		map[string]any{"answered_at": start.Add(3 * time.Second), "transcript": "live"})}, event.WithSubject(w.conv))
	assignAndLogIn(t, d, run, w.conv, "en")
	row := `li.conv[data-id="` + w.conv + `"]`
	controls := `.call.call-answered[data-id="` + id + `"] .call-controls`
	run("open the conversation", chromedp.WaitVisible(css(row)), chromedp.Click(css(row)), chromedp.WaitVisible(css(controls)))
	br.Shot(t, "call-controls")
	// The live call is being transcribed.
	if said := textOf(t, ctx, `.call.call-answered[data-id="`+id+`"] .call-transcript.transcribing`); said != "✎ Transcribing…" {
		t.Fatalf("the live call's transcript state says %q", said)
	}

	run("transfer to 8012", chromedp.SendKeys(css(controls+" .call-transfer-target"), "8012"), chromedp.Click(css(controls+" .call-transfer")))
	waitCount(t, b, bus.StreamOut, "omni.out.voice.call.transfer", 1)
	if td := dataOf(t, lastEvent(t, b, bus.StreamOut, "omni.out.voice.call.transfer")); td["target"] != "8012" || td["call_id"] != id || td["agent_id"] != "agent-li" {
		t.Fatalf("transfer from the page: %v", td)
	}
	// What became of it comes back on the call (the unifier's update): the agent reads why not.
	failedAt := time.Now().UTC()
	w.publish("omni.desk.call.updated", "omni.desk.call.updated", map[string]any{"call": w.callView(id, "answered", failedAt,
		map[string]any{"answered_at": start.Add(3 * time.Second), "transfer": map[string]any{"outcome": "failed", "target": "8012",
			"reason": "failed", "status": 486, "detail": "SIP/2.0 486 Busy Here", "agent_id": "agent-li", "at": failedAt}})},
		event.WithSubject(w.conv))
	outcome := `.call.call-answered[data-id="` + id + `"] .call-transfer-outcome.failed`
	run("the transfer's failure on the call", chromedp.WaitVisible(css(outcome)))
	said, err := chromedp.Run(ctx, chromedp.Text(css(outcome)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(said, "Transfer failed (8012): the target did not answer — SIP/2.0 486 Busy Here") {
		t.Fatalf("the call's entry says %q about the failed transfer", said)
	}
	br.Shot(t, "call-transfer-failed")
	run("play a prompt", chromedp.SendKeys(css(controls+" .call-prompt-text"), "Please hold"), chromedp.Click(css(controls+" .call-prompt")))
	waitCount(t, b, bus.StreamOut, "omni.out.voice.call.prompt", 1)
	if pd := dataOf(t, lastEvent(t, b, bus.StreamOut, "omni.out.voice.call.prompt")); pd["text"] != "Please hold" || pd["call_id"] != id {
		t.Fatalf("prompt from the page: %v", pd)
	}
	run("hang up", chromedp.Click(css(controls+" .call-hangup")))
	waitCount(t, b, bus.StreamOut, "omni.out.voice.call.hangup", 1)
	if hd := dataOf(t, lastEvent(t, b, bus.StreamOut, "omni.out.voice.call.hangup")); hd["call_id"] != id || hd["agent_id"] != "agent-li" {
		t.Fatalf("hang-up from the page: %v", hd)
	}
	// The call ends with a partial transcript (ASR was down for a while); a late copy of the
	// answered update, still saying live, does not take it back.
	endedAt := time.Now().UTC()
	w.publish("omni.desk.call.updated", "omni.desk.call.updated", map[string]any{"call": w.callView(id, "ended", endedAt,
		map[string]any{"answered_at": start.Add(3 * time.Second), "ended_at": endedAt, "transcript": "partial"})}, event.WithSubject(w.conv))
	w.publish("omni.desk.call.updated", "omni.desk.call.updated", map[string]any{"call": w.callView(id, "answered", start.Add(3*time.Second),
		map[string]any{"answered_at": start.Add(3 * time.Second), "transcript": "live"})}, event.WithSubject(w.conv))
	partial := `.call.call-ended[data-id="` + id + `"] .call-transcript.partial`
	run("the partial transcript on the ended call", chromedp.WaitVisible(css(partial)))
	waitCount(t, b, bus.StreamDesk, "omni.desk.call.updated", 4)
	run("reload the conversation", chromedp.Reload(), chromedp.WaitVisible(css(row)), chromedp.Click(css(row)), chromedp.WaitVisible(css(partial)))
	if said := textOf(t, ctx, partial); said != "⚠ Transcript partial — ASR was unavailable for part of the call" {
		t.Fatalf("the ended call's transcript state says %q", said)
	}
	br.Shot(t, "call-transcript-partial")
}

// textOf returns the text of the first element sel matches on the page.
func textOf(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(css(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}
