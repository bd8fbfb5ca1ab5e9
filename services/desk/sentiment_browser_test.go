package desk_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/omnibus-dev/omnibus/pkg/browsertest"
	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
)

// TestBrowserSentimentBanner: the agent a conversation is assigned to sees, live, the banner
// "客户情绪转为负面" on it when the sentiment connector raises its alert (and "Customer turned
// negative" in English), the ⚠ on its inbox row and a mark on the scored message; the banner goes
// when the episode clears.
func TestBrowserSentimentBanner(t *testing.T) {
	t.Parallel()
	br := browsertest.Start(t, "the desk's sentiment banner test", "desk-sentiment")
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
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(css(sel)))
		if err != nil {
			br.Shot(t, "failed")
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}

	w := newWorld(t, b)
	w.opened("wechatkf")
	m1 := w.inbound("wechatkf", "wechat_openid", "oWx-1", "你们这服务太差了，再不解决我就要投诉！！", time.Now().UTC().Add(-time.Minute), "wechatkf")
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if code := d.call(t, "", "POST", "/desk/dev/login?agent=supervisor-wang&role=supervisor&format=token", nil, &tok); code != 200 {
		t.Fatalf("dev login: %d", code)
	}
	bustest.WaitFor(t, 15*time.Second, "the conversation assigned to agent-li", func() bool {
		return d.call(t, tok.AccessToken, "POST", "/api/conversations/"+w.conv+"/assign", map[string]string{"agent_id": "agent-li"}, nil) == 200
	})
	run("dev login as agent-li", chromedp.EmulateViewport(1280, 800), chromedp.Navigate(d.url+"/?lang=zh"),
		chromedp.WaitVisible(css(`input[name="agent"][value="agent-li"]`)),
		chromedp.Click(css(`input[name="agent"][value="agent-li"]`)), chromedp.Click(css("#dev-login-submit")),
		chromedp.WaitVisible(css("#live.on")))
	row := `li.conv[data-id="` + w.conv + `"]`
	run("open the conversation", chromedp.WaitVisible(css(row)), chromedp.Click(css(row)), chromedp.WaitVisible(css("#timeline .msg.inbound")))

	w.scored(m1, "negative", -0.97, true)
	w.sentimentEvent("omni.tool.ai.sentiment.alert.raised", "raised", m1, map[string]any{"episode": 1, "mean_score": -0.97,
		"label": "negative", "escalation": true, "provider": "builtin", "input_event_ids": []string{m1}})
	run("the banner, live", chromedp.WaitVisible(css("#sentiment-alert")), chromedp.WaitVisible(css(".sentiment-mark.s-negative")),
		chromedp.WaitVisible(css(row+" .neg-flag")))
	if got := text("#sentiment-alert"); !strings.Contains(got, "客户情绪转为负面") {
		t.Fatalf("banner %q", got)
	}
	br.Shot(t, "sentiment-banner-zh")
	run("English", chromedp.Navigate(d.url+"/?lang=en"), chromedp.WaitVisible(css(row)), chromedp.Click(css(row)),
		chromedp.WaitVisible(css("#sentiment-alert")))
	if got := text("#sentiment-alert"); !strings.Contains(got, "Customer turned negative") {
		t.Fatalf("banner %q", got)
	}

	m2 := w.inbound("wechatkf", "wechat_openid", "oWx-1", "退款收到了，谢谢你们，非常满意", time.Now().UTC(), "wechatkf")
	w.scored(m2, "positive", 0.92, false)
	w.sentimentEvent("omni.tool.ai.sentiment.alert.cleared", "cleared", m2, map[string]any{"episode": 1, "mean_score": -0.02,
		"label": "positive", "escalation": false, "provider": "builtin", "input_event_ids": []string{m2}})
	run("the banner gone", chromedp.WaitNotPresent(css("#sentiment-alert")), chromedp.WaitVisible(css(".sentiment-mark.s-positive")))
	br.Shot(t, "sentiment-cleared")
}
