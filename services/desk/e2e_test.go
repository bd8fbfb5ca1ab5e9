package desk_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
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

func TestBrowserEndToEnd(t *testing.T) {
	t.Parallel()
	br := browsertest.Start(t, "the desk's browser test", "desk-e2e")
	bctx := br.Ctx
	b := bustest.New(t, bus.WithLogger(quiet()))
	recordings := t.TempDir()
	d := startDesk(t, b, map[string]string{"DESK_DEV_LOGIN": "true", "DESK_ASSIGN": "false", "DESK_RECORDING_BUCKET": "file://" + recordings})

	ctx, cancel := context.WithTimeout(bctx, 120*time.Second)
	defer cancel()
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			br.Shot(t, "failed")
			t.Fatalf("%s: %v", what, err)
		}
	}
	read := func(what string, a chromedp.Action[string]) string {
		t.Helper()
		v, err := chromedp.Run(ctx, a)
		if err != nil {
			br.Shot(t, "failed")
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	// toggle clicks a button that opens a form until the form shows. A click can land on a
	// button the view is replacing (a CI run under load lost one that way and waited out the
	// test's deadline); the form renders in the click handler, so one that has not shown after
	// seconds was not opened, and clicking again cannot close it.
	toggle := func(what, button, field string) {
		t.Helper()
		for attempt := 1; ; attempt++ {
			err := chromedp.Do(ctx, chromedp.Click(css(button)))
			if err == nil {
				wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
				err = chromedp.Do(wctx, chromedp.WaitVisible(css(field)))
				wcancel()
				if err == nil {
					return
				}
			}
			if attempt == 5 || ctx.Err() != nil {
				br.Shot(t, "failed")
				t.Fatalf("%s (%d clicks): %v", what, attempt, err)
			}
			t.Logf("%s: no form after click %d; clicking again", what, attempt)
		}
	}
	screenshot := func(name string) { t.Helper(); br.Shot(t, name) }

	// The workbench sends a browser without a session to the login page; the dev login signs in
	// as agent-li and the workbench opens on an empty inbox.
	run("the login page", chromedp.EmulateViewport(1280, 800), chromedp.Navigate(d.url+"/?lang=zh"),
		chromedp.WaitVisible(css(`input[name="agent"][value="agent-li"]`)))
	screenshot("00-login")
	run("dev login", chromedp.Click(css(`input[name="agent"][value="agent-li"]`)), chromedp.Click(css("#dev-login-submit")),
		chromedp.WaitVisible(css("#conversations li")), chromedp.WaitVisible(css("#live.on")))
	screenshot("01-inbox")

	// A WeChat customer writes: the conversation appears without a reload.
	w := newWorld(t, b)
	w.customer("张伟", map[string]any{"vip_level": "gold", "company": "示例科技"})
	w.opened("wechatkf")
	w.inbound("wechatkf", "wechat_openid", "oWx-zhangwei", "你好，我的快递 SF1234567890123 三天没更新了", time.Now().UTC().Add(-3*time.Minute), "wechatkf")
	row := `li.conv[data-id="` + w.conv + `"]`
	run("the new conversation in the inbox", chromedp.WaitVisible(css(row)))
	waitText := func(what, sel, want string) {
		t.Helper()
		var got string
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if got = read(what, chromedp.Text(css(sel))); strings.Contains(got, want) {
				return
			}
		}
		br.Shot(t, "failed")
		t.Fatalf("%s: %q does not contain %q", what, got, want)
	}
	waitText("the inbox preview", row+" .conv-preview", "SF1234567890123")
	screenshot("02-inbox-live")

	// Open it: timeline and 360 panel.
	run("open the conversation", chromedp.Click(css(row)), chromedp.WaitVisible(css("#panel-360 .profile")),
		chromedp.WaitVisible(css("#past-conversations li")), chromedp.WaitVisible(css("#timeline .msg.inbound")))
	panel := read("the 360 panel", chromedp.Text(css("#panel-360")))
	for _, want := range []string{"张伟", "wmAb…45", "+86 138****8000", "gold", "示例科技"} {
		if !strings.Contains(panel, want) {
			t.Errorf("360 panel lacks %q: %q", want, panel)
		}
	}
	if strings.Contains(panel, "oWx-zhangwei") {
		t.Error("the 360 panel shows a raw identity")
	}
	screenshot("03-conversation-360")

	// The customer's previous conversation, closed an hour ago, gets its summary (the unifier's
	// conversation.updated carrying it): past conversations show it live, with its source and
	// business type.
	prev, prevClosed := uuid.NewString(), w.t0.Add(-time.Hour)
	w.publish("omni.desk.conversation.closed", "omni.desk.conversation.closed", map[string]any{
		"conversation": w.convView(prev, w.cust, "closed", []string{"sms"}, w.t0.Add(-2*time.Hour), prevClosed), "reason": "closed by agent"},
		event.WithSubject(prev))
	withSummary := w.convView(prev, w.cust, "closed", []string{"sms"}, w.t0.Add(-2*time.Hour), prevClosed)
	withSummary["summary"] = map[string]any{"text": "客户 138****8000 询问订单 OD202612070001 的退款进度；坐席确认退款已提交。", "source": "llm",
		"business_type": "order", "model": "qwen-plus", "closed_at": prevClosed, "event_id": "assist:summary:" + prev, "at": prevClosed.Add(3 * time.Second)}
	w.publish("omni.desk.conversation.updated", "omni.desk.conversation.updated", map[string]any{"conversation": withSummary,
		"change": "summary added (llm)"}, event.WithSubject(prev))
	// The panel re-renders as the events land: poll in the page rather than hold a node.
	waitIn := func(what, sel, want string) {
		t.Helper()
		q, _ := json.Marshal(sel)
		w, _ := json.Marshal(want)
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`(() => { const e = document.querySelector(`+string(q)+`);
			return !!e && e.textContent.includes(`+string(w)+`) })()`, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
			br.Shot(t, "failed")
			t.Fatalf("%s: %v", what, err)
		}
	}
	waitIn("the summary in past conversations", "#past-conversations .conv-summary .summary-text", "OD202612070001 的退款进度")
	waitIn("the summary's source", "#past-conversations .conv-summary .summary-source", "小结 · AI")
	waitIn("the summary's business type", "#past-conversations .conv-summary .summary-biz", "订单")
	screenshot("03b-past-conversation-summary")

	// Track the parcel: the number is prefilled from the customer's message.
	toggle("open the track form", "#tool-track", "#track-number")
	number := read("the tracking number", chromedp.Value(css("#track-number")))
	if number != "SF1234567890123" {
		t.Fatalf("prefilled tracking number %q", number)
	}
	// Its pattern compiles under the v flag current Chromium applies (an invalid one is silently
	// ignored, and every value passes): too short, a space, refused; a dash, accepted.
	for value, want := range map[string]bool{"ab": false, "SF 123": false, "SF-1234": true, "SF1234567890123": true} {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const e = document.querySelector("#track-number"), was = e.value;
			e.value = `+strconv.Quote(value)+`; const ok = e.checkValidity(); e.value = was; return ok })()`))
		if err != nil {
			t.Fatalf("check %q: %v", value, err)
		}
		if ok != want {
			t.Errorf("the track form accepts %q: %v, want %v", value, ok, want)
		}
	}
	run("submit the track form", chromedp.Click(css("#tool-submit")))
	waitCount(t, b, bus.StreamTool, "omni.tool.logistics.route.requested", 1)
	req := lastEvent(t, b, bus.StreamTool, "omni.tool.logistics.route.requested")
	if rd := dataOf(t, req); rd["conversation_id"] != w.conv || rd["tracking_number"] != "SF1234567890123" || rd["agent_id"] != "agent-li" ||
		event.CorrelationID(req) != req.ID() {
		t.Fatalf("track request %v (correlationid %q)", rd, event.CorrelationID(req))
	}
	run("the pending request on the timeline", chromedp.WaitVisible(css(".tool-request.pending")))

	// The logistics tool answers (through the unifier's desk.tool.result): the route card appears.
	now := time.Now().UTC()
	w.toolResult("logistics", "route", "completed", req.ID(), map[string]any{"conversation_id": w.conv, "customer_id": w.cust,
		"tracking_number": "SF1234567890123", "provider": "sf_express", "status": "in_transit", "status_text": "运输中",
		"eta": now.Add(26 * time.Hour).Format(time.RFC3339),
		"events": []map[string]string{
			{"at": now.Add(-2 * time.Hour).Format(time.RFC3339), "location": "深圳", "description": "快件已到达 深圳宝安转运中心"},
			{"at": now.Add(-20 * time.Hour).Format(time.RFC3339), "location": "广州", "description": "顺丰速运 已收取快件"},
		}}, now)
	run("the route card", chromedp.WaitVisible(css(".route-card .send-route")), chromedp.WaitVisible(css(".tool-request.answered")))
	screenshot("04-route-card")

	// Send it to the customer: a send command to the WeChat connector with the route text.
	run("send the route", chromedp.Click(css(".route-card .send-route")))
	waitCount(t, b, bus.StreamOut, "omni.out.wechatkf.message.send", 1)
	send := lastEvent(t, b, bus.StreamOut, "omni.out.wechatkf.message.send")
	sd := dataOf(t, send)
	msg, _ := sd["message"].(map[string]any)
	text, _ := msg["text"].(string)
	to, _ := sd["to"].(map[string]any)
	if !strings.Contains(text, "SF1234567890123") || !strings.Contains(text, "深圳宝安转运中心") || to["value"] != "oWx-zhangwei" || sd["conversation_id"] != w.conv {
		t.Fatalf("send command %v", sd)
	}
	run("the pending reply", chromedp.WaitVisible(css(`.msg.outbound[data-id="`+send.ID()+`"] .st-pending`)))

	// The connector delivers it: the unifier records it and reports delivered.
	w.publish("omni.desk.message.added", "omni.desk.message.added", map[string]any{
		"message": map[string]any{"event_id": send.ID(), "conversation_id": w.conv, "customer_id": w.cust, "channel": "wechatkf", "direction": "outbound",
			"to": map[string]string{"kind": "wechat_openid", "masked": "wmAb…45", "source": "wechatkf"}, "body": msg, "sent_at": now, "status": "sent"},
		"conversation": w.convView(w.conv, w.cust, "open", []string{"wechatkf"}, w.t0, now), "customer": map[string]any{"id": w.cust}})
	w.publish("omni.desk.message.updated", "omni.desk.message.updated", map[string]any{"message_id": send.ID(), "conversation_id": w.conv,
		"channel": "wechatkf", "status": "delivered", "at": now.Add(time.Second)})
	run("the delivered status", chromedp.WaitVisible(css(`.msg.outbound[data-id="`+send.ID()+`"] .st-delivered`)))
	screenshot("05-sent-delivered")

	// A channel's system event (the customer entering the session from a scene) is a note on the
	// timeline, not a chat bubble.
	enter := "wechatkf:" + uuid.NewString()
	w.publish("omni.desk.message.added", "omni.desk.message.added", map[string]any{
		"message": map[string]any{"event_id": enter, "conversation_id": w.conv, "customer_id": w.cust, "channel": "wechatkf", "direction": "inbound",
			"from": map[string]string{"kind": "wechat_openid", "masked": "wmAb…45", "source": "wechatkf"},
			"body": map[string]any{"type": "event", "event": map[string]any{"name": "enter_session", "detail": map[string]any{"scene": "app"}}}, "sent_at": now.Add(2 * time.Second)},
		"conversation": w.convView(w.conv, w.cust, "open", []string{"wechatkf"}, w.t0, now.Add(2*time.Second)), "customer": map[string]any{"id": w.cust},
	}, event.WithSubject(w.conv))
	note := read("the system event", chromedp.Text(css(`.system-event[data-id="`+enter+`"]`)))
	if !strings.Contains(note, "客户进入会话") || !strings.Contains(note, "app") {
		t.Errorf("system event note %q", note)
	}
	if bubbles, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('.msg[data-id="`+enter+`"]').length`)); err != nil || bubbles != 0 {
		t.Errorf("the system event is also rendered as a message (%d, %v)", bubbles, err)
	}

	// Chinese (chosen with ?lang=zh at sign-in), then English.
	if label := read("the track button", chromedp.Text(css("#tool-track"))); label != "查询物流" {
		t.Errorf("in Chinese the track button reads %q", label)
	}
	run("switch to English", chromedp.Click(css("#lang-toggle")))
	if label := read("the track button", chromedp.Text(css("#tool-track"))); label != "Track parcel" {
		t.Errorf("after the language toggle the track button reads %q", label)
	}
	screenshot("06-english")

	// The customer calls: a banner pops with who is calling before the call is answered, and the
	// call is on the timeline; once it ends the banner goes and the timeline links its recording.
	callID, rang := "0193a1c6-9a8b-7c6d-b5e4-f3a2b1c0d9e8", time.Now().UTC()
	w.publish("omni.desk.call.ringing", "omni.desk.call.ringing", map[string]any{
		"call":         w.callView(callID, "ringing", rang, map[string]any{"started_at": rang}),
		"conversation": w.convView(w.conv, w.cust, "open", []string{"wechatkf", "voice"}, w.t0, rang),
		"customer": map[string]any{"id": w.cust, "display_name": "张伟", "created_at": w.t0, "profile": map[string]any{}, "profile_sources": map[string]any{},
			"identities": []map[string]string{{"kind": "phone", "masked": "+86 138****8000", "source": "sms"}}},
	}, event.WithSubject(w.conv))
	banner := `.banner-call[data-call-id="` + callID + `"]`
	run("the ringing banner", chromedp.WaitVisible(css(banner)), chromedp.WaitVisible(css("#timeline .call.call-ringing")))
	if text := read("the ringing banner", chromedp.Text(css(banner))); !strings.Contains(text, "张伟") || !strings.Contains(text, "+86 138****8000") {
		t.Errorf("the ringing banner reads %q", text)
	}
	screenshot("07-call-ringing")
	ended := rang.Add(2 * time.Minute)
	if err := os.MkdirAll(filepath.Join(recordings, callID), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(recordings, callID, "caller.wav"), silentWAV(2), 0o644); err != nil {
		t.Fatal(err)
	}
	w.publish("omni.desk.call.updated", "omni.desk.call.updated", map[string]any{"call": w.callView(callID, "ended", ended, map[string]any{
		"started_at": rang, "answered_at": rang.Add(5 * time.Second), "ended_at": ended, "duration_ms": 120000, "talk_ms": 115000,
		"hangup_side": "caller", "reason": "bye", "recording_url": "file://" + filepath.ToSlash(recordings) + "/" + callID + "/caller.wav"})},
		event.WithSubject(w.conv))
	player := "#timeline .call.call-ended .recording audio"
	run("the ended call with its recording's player", chromedp.WaitVisible(css(player)), chromedp.WaitNotPresent(css(banner)))
	// The player's signed link serves the recording to the page.
	duration, err := chromedp.Run(ctx, chromedp.Poll[float64](`(() => { const a = document.querySelector("`+player+`");
		if (a.readyState < 1) { if (!a.dataset.asked) { a.dataset.asked = "1"; a.preload = "metadata"; a.load(); } return 0 } return a.duration })()`,
		chromedp.WithPollingTimeout(20*time.Second)))
	if err != nil {
		br.Shot(t, "failed")
		t.Fatalf("the recording loads in the player: %v", err)
	}
	if duration < 1.9 || duration > 2.1 {
		t.Errorf("the player reads a recording of %.2f s, want 2 s", duration)
	}
	screenshot("08-call-ended")
}

// silentWAV is secs of 8 kHz 16-bit mono silence as a WAV file.
func silentWAV(secs int) []byte {
	n := 8000 * 2 * secs
	b := make([]byte, 44+n)
	copy(b, "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+n))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1) // PCM
	binary.LittleEndian.PutUint16(b[22:], 1) // mono
	binary.LittleEndian.PutUint32(b[24:], 8000)
	binary.LittleEndian.PutUint32(b[28:], 16000)
	binary.LittleEndian.PutUint16(b[32:], 2)
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(n))
	return b
}
