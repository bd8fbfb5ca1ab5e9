package desk_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/omnibus-dev/omnibus/pkg/browsertest"
	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
)

func css(s string) chromedp.CSS { return chromedp.CSS(s) }

// browserDesk starts a browser and a desk with the development login on a fresh bus; run does
// browser actions, failing the test with a screenshot.
func browserDesk(t *testing.T, what, name string) (*browsertest.Browser, *bustest.Bundle, *deskBundle, context.Context,
	func(what string, actions ...chromedp.Action[chromedp.Void])) {
	t.Helper()
	br := browsertest.Start(t, what, name)
	b := bustest.New(t, bus.WithLogger(quiet()))
	d := startDesk(t, b, map[string]string{"DESK_DEV_LOGIN": "true", "DESK_ASSIGN": "false"})
	ctx, cancel := context.WithTimeout(br.Ctx, 90*time.Second)
	t.Cleanup(cancel)
	return br, b, d, ctx, func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			br.Shot(t, "failed")
			t.Fatalf("%s: %v", what, err)
		}
	}
}

// liveDelta publishes a piece of a suggestion as the assist connector does (core NATS).
func liveDelta(t *testing.T, b *bustest.Bundle, request, conv, agent string, seq, offset int, text string) {
	t.Helper()
	e, err := event.New("omni.live.ai.suggest.delta", "/connectors/assist", map[string]any{"conversation_id": conv, "agent_id": agent,
		"seq": seq, "attempt": 1, "offset": offset, "text": text}, event.WithCorrelationID(request))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Client.PublishLive(context.Background(), "omni.live.ai.suggest."+request, e); err != nil {
		t.Fatal(err)
	}
}

// TestBrowserStreamsSuggestion: the agent presses the AI button; the pieces of the suggestion
// appear one after the other under the request, for that agent only, and the completed result
// replaces them; the agent uses it and sends it, which is recorded as accepted and counted on
// the supervisor's analytics page.
func TestBrowserStreamsSuggestion(t *testing.T) {
	t.Parallel()
	br, b, d, ctx, run := browserDesk(t, "the desk's suggestion streaming test", "desk-suggest")
	waitText := func(what, sel, want string) {
		t.Helper()
		var got string
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			v, err := chromedp.Run(ctx, chromedp.Text(css(sel)))
			if got = v; err == nil && got == want {
				return
			}
		}
		br.Shot(t, "failed")
		t.Fatalf("%s: %q, want %q", what, got, want)
	}

	run("dev login", chromedp.EmulateViewport(1280, 800), chromedp.Navigate(d.url+"/?lang=zh"),
		chromedp.WaitVisible(css(`input[name="agent"][value="agent-li"]`)),
		chromedp.Click(css(`input[name="agent"][value="agent-li"]`)), chromedp.Click(css("#dev-login-submit")),
		chromedp.WaitVisible(css("#live.on")))
	w := newWorld(t, b)
	w.customer("张伟", nil)
	w.opened("wechatkf")
	w.inbound("wechatkf", "wechat_openid", "oWx-zhangwei", "我的银行卡被扣了两次款", time.Now().UTC().Add(-time.Minute), "wechatkf")
	row := `li.conv[data-id="` + w.conv + `"]`
	run("open the conversation", chromedp.WaitVisible(css(row)), chromedp.Click(css(row)), chromedp.WaitVisible(css("#timeline .msg.inbound")))

	run("press the AI button", chromedp.Click(css("#tool-ai")))
	waitCount(t, b, bus.StreamTool, "omni.tool.ai.suggest.requested", 1)
	req := lastEvent(t, b, bus.StreamTool, "omni.tool.ai.suggest.requested")
	live := `.ai-live[data-live="` + req.ID() + `"] .live-text`

	liveDelta(t, b, req.ID(), w.conv, "agent-li", 1, 0, "您好，")
	waitText("the first piece", live, "您好，")
	br.Shot(t, "10-suggestion-streaming")
	liveDelta(t, b, req.ID(), w.conv, "agent-wang", 2, 3, "（给别的坐席）") // addressed to another agent: not shown
	liveDelta(t, b, req.ID(), w.conv, "agent-li", 2, 3, "重复扣款会在 1-3 个工作日内")
	waitText("the second piece", live, "您好，重复扣款会在 1-3 个工作日内")
	liveDelta(t, b, req.ID(), w.conv, "agent-li", 3, 19, "原路退回。")
	waitText("the third piece", live, "您好，重复扣款会在 1-3 个工作日内原路退回。")

	final := "您好，重复扣款会在 1-3 个工作日内原路退回，请留意银行通知。"
	w.toolResult("ai", "suggest", "completed", req.ID(), map[string]any{"conversation_id": w.conv, "provider": "bailian",
		"model": "qwen-plus", "suggestions": []map[string]string{{"text": final}},
		"provenance": map[string]any{"provider": "bailian", "model": "qwen-plus", "prompt_template_id": "assist.suggest.v2", "text": final}}, time.Now().UTC())
	run("the completed suggestion replaces the streamed one", chromedp.WaitVisible(css(".ai-card .use-suggestion")),
		chromedp.WaitNotPresent(css(".ai-live")))
	text, err := chromedp.Run(ctx, chromedp.Text(css(".ai-card .suggestions li span")))
	if err != nil || !strings.Contains(text, "请留意银行通知") {
		t.Fatalf("completed suggestion %q (%v)", text, err)
	}
	br.Shot(t, "11-suggestion-completed")

	// Use it and send it as it is: the desk records the suggestion as accepted.
	run("use the suggestion", chromedp.Click(css(".ai-card .use-suggestion")))
	if v, err := chromedp.Run(ctx, chromedp.Value(css("#reply-text"))); err != nil || v != final {
		t.Fatalf("the reply box holds %q (%v)", v, err)
	}
	run("send it", chromedp.Click(css("#reply-send")))
	waitCount(t, b, bus.StreamTool, "omni.tool.ai.suggest.feedback", 1)
	fb := dataOf(t, lastEvent(t, b, bus.StreamTool, "omni.tool.ai.suggest.feedback"))
	if fb["verdict"] != "accepted" || fb["edit_distance"] != float64(0) || fb["model"] != "qwen-plus" || fb["agent_id"] != "agent-li" ||
		fb["request_id"] != req.ID() {
		t.Fatalf("feedback %v", fb)
	}

	// The supervisor's analytics count it.
	run("the analytics page", chromedp.Navigate(d.url+"/desk/dev/login?agent=supervisor-wang&role=supervisor&next=/analytics"),
		chromedp.WaitVisible(css(`#an-rows tr[data-model="qwen-plus"] .rate`)))
	if rate, err := chromedp.Run(ctx, chromedp.Text(css(`#an-rows tr[data-model="qwen-plus"] .rate`))); err != nil || rate != "100.0%" {
		t.Fatalf("acceptance rate %q (%v)", rate, err)
	}
	br.Shot(t, "12-analytics")
}

// TestBrowserKnowledgeBase: a supervisor searches the knowledge base in Chinese, writes an
// article, edits and deletes it on the /kb page.
func TestBrowserKnowledgeBase(t *testing.T) {
	t.Parallel()
	br, _, d, ctx, run := browserDesk(t, "the desk's knowledge-base page test", "desk-kb")
	first := func(what, want string) {
		t.Helper()
		var got string
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if got, _ = chromedp.Run(ctx, chromedp.Text(css("#kb-articles li"))); strings.Contains(got, want) {
				return
			}
		}
		br.Shot(t, "failed")
		t.Fatalf("%s: first article %q, want %q", what, got, want)
	}
	// set replaces a field's value as typing would (chromedp's Clear leaves these fields as they are).
	set := func(sel, v string) {
		t.Helper()
		js := `(() => { const i = document.querySelector(` + strconv.Quote(sel) + `); i.value = ` + strconv.Quote(v) +
			`; i.dispatchEvent(new Event("input")); return true })()`
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js)); err != nil {
			t.Fatalf("set %s to %q: %v", sel, v, err)
		}
	}
	search := func(q string) { t.Helper(); set("#kb-q", q) }
	run("supervisor login", chromedp.EmulateViewport(1280, 800),
		chromedp.Navigate(d.url+"/desk/dev/login?agent=supervisor-wang&role=supervisor&next=/kb%3Flang%3Dzh"),
		chromedp.WaitVisible(css("#kb-articles li.kb-article")), chromedp.WaitVisible(css("#kb-new")))
	search("银行卡被扣了两次款")
	first("the search", "银行卡重复扣款")
	br.Shot(t, "20-kb-search")

	run("write an article", chromedp.Click(css("#kb-new")), chromedp.WaitVisible(css("#kb-title")),
		chromedp.SendKeys(css("#kb-title"), "发票开具"), chromedp.SendKeys(css("#kb-tags"), "发票，售后"),
		chromedp.SendKeys(css("#kb-body"), "电子发票在订单完成后 24 小时内发送到预留邮箱。"), chromedp.Click(css("#kb-save")),
		chromedp.WaitVisible(css("#kb-delete")))
	search("发票")
	first("the new article", "发票开具")
	run("open it", chromedp.Click(css("#kb-articles li.kb-article")))
	set("#kb-title", "电子发票开具")
	run("save it", chromedp.Click(css("#kb-save")))
	first("the edited article", "电子发票开具 zh")
	br.Shot(t, "21-kb-edited")
	run("delete it", chromedp.Click(css("#kb-delete")), chromedp.Click(css("#kb-delete")))
	first("after the delete", "没有文章")
}
