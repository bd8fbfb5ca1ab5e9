package desk_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserSentimentBanner: the agent a conversation is assigned to sees, live, the banner
// "客户情绪转为负面" on it when the sentiment connector raises its alert (and "Customer turned
// negative" in English), the ⚠ on its inbox row and a mark on the scored message; the banner goes
// when the episode clears.
func TestBrowserSentimentBanner(t *testing.T) {
	t.Parallel()
	br, b, d, ctx, run := browserDesk(t, "the desk's sentiment banner test", "desk-sentiment")
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
	assignAndLogIn(t, d, run, w.conv, "zh")
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
