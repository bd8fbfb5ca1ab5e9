package desk_test

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/omnibus-dev/omnibus/pkg/browsertest"
	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
)

// TestBrowserCallControls: on an answered call of her conversation, the agent types an
// extension and presses Transfer, types a prompt and presses Play, then presses Hang up; each
// becomes its command on the bus, with her as the agent.
func TestBrowserCallControls(t *testing.T) {
	t.Parallel()
	br := browsertest.Start(t, "the desk's call controls test", "desk-calls")
	b := bustest.New(t, bus.WithLogger(quiet()))
	d := startDesk(t, b, map[string]string{"DESK_DEV_LOGIN": "true", "DESK_ASSIGN": "false"})
	ctx, cancel := context.WithTimeout(br.Ctx, 90*time.Second)
	defer cancel()
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			br.Shot(t, "failed")
			t.Fatalf("%s: %v", what, err)
		}
	}

	w := newWorld(t, b)
	id := uuid.NewString()
	start := time.Now().UTC().Add(-time.Minute)
	w.publish("omni.desk.call.ringing", "omni.desk.call.ringing", map[string]any{
		"call":         w.callView(id, "ringing", start, map[string]any{"started_at": start}),
		"conversation": w.convView(w.conv, w.cust, "open", []string{"voice"}, w.t0, start),
		"customer": map[string]any{"id": w.cust, "display_name": "张伟", "created_at": w.t0, "profile": map[string]any{}, "profile_sources": map[string]any{},
			"identities": []map[string]string{{"kind": "phone", "masked": "+86 138****8000", "source": "voice"}}},
	}, event.WithSubject(w.conv))
	w.publish("omni.desk.call.updated", "omni.desk.call.updated", map[string]any{"call": w.callView(id, "answered", start.Add(3*time.Second),
		map[string]any{"answered_at": start.Add(3 * time.Second)})}, event.WithSubject(w.conv))
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if code := d.call(t, "", "POST", "/desk/dev/login?agent=supervisor-wang&role=supervisor&format=token", nil, &tok); code != 200 {
		t.Fatalf("dev login: %d", code)
	}
	bustest.WaitFor(t, 15*time.Second, "the conversation assigned to agent-li", func() bool {
		return d.call(t, tok.AccessToken, "POST", "/api/conversations/"+w.conv+"/assign", map[string]string{"agent_id": "agent-li"}, nil) == 200
	})
	run("dev login as agent-li", chromedp.EmulateViewport(1280, 800), chromedp.Navigate(d.url+"/?lang=en"),
		chromedp.WaitVisible(css(`input[name="agent"][value="agent-li"]`)),
		chromedp.Click(css(`input[name="agent"][value="agent-li"]`)), chromedp.Click(css("#dev-login-submit")),
		chromedp.WaitVisible(css("#live.on")))
	row := `li.conv[data-id="` + w.conv + `"]`
	controls := `.call.call-answered[data-id="` + id + `"] .call-controls`
	run("open the conversation", chromedp.WaitVisible(css(row)), chromedp.Click(css(row)), chromedp.WaitVisible(css(controls)))
	br.Shot(t, "call-controls")

	run("transfer to 8012", chromedp.SendKeys(css(controls+" .call-transfer-target"), "8012"), chromedp.Click(css(controls+" .call-transfer")))
	waitCount(t, b, bus.StreamOut, "omni.out.voice.call.transfer", 1)
	if td := dataOf(t, lastEvent(t, b, bus.StreamOut, "omni.out.voice.call.transfer")); td["target"] != "8012" || td["call_id"] != id || td["agent_id"] != "agent-li" {
		t.Fatalf("transfer from the page: %v", td)
	}
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
}
