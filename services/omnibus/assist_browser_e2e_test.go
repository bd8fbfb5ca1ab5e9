package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/omnibus-dev/omnibus/pkg/browsertest"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/pii"
)

// page drives the workbench in a browser whose page re-renders on every live notice: waits and
// reads evaluate in the page in one go (polling until truthy), and clicks are retried when
// their node went stale.
type page struct {
	t   *testing.T
	br  *browsertest.Browser
	ctx context.Context
}

func (p *page) fail(format string, args ...any) {
	p.t.Helper()
	p.br.Shot(p.t, "failed")
	p.t.Fatalf(format, args...)
}

// poll evaluates expr every interval until it is truthy and returns it.
func (p *page) poll(what, expr string, interval time.Duration) string {
	p.t.Helper()
	for {
		v, err := chromedp.Run(p.ctx, chromedp.Poll[string](expr, chromedp.WithPollingInterval(interval), chromedp.WithPollingTimeout(0)))
		if err == nil {
			return v
		}
		if p.ctx.Err() != nil {
			p.fail("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond) // the page replaced its execution context: poll again
	}
}

// visible waits until sel matches a rendered element and returns its text.
func (p *page) visible(what, sel string) string {
	p.t.Helper()
	return p.poll(what, `(() => { const e = document.querySelector(`+jsString(sel)+`); return e && e.getClientRects().length ? e.innerText + " " : ""; })()`, 100*time.Millisecond)
}

func (p *page) click(what, sel string) {
	p.t.Helper()
	for {
		p.visible(what, sel)
		if err := chromedp.Do(p.ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible)); err == nil {
			return
		} else if p.ctx.Err() != nil {
			p.fail("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestBrowserAISuggestion runs the AI button through the whole system in headless Chromium: a
// WeChat customer leaves their phone number asking about a late parcel; the agent presses the
// AI button; the suggestion grows on the page as the sandbox model writes it (through assist's
// live deltas and the desk's event stream) and the completed one replaces it, grounded in the
// knowledge base's parcel-delay article and with the phone number as the desk showed it — while
// the model was sent no personal data. Then the model goes down: the button still answers, with the
// knowledge-base articles as the fallback.
func TestBrowserAISuggestion(t *testing.T) {
	t.Parallel()
	br := browsertest.Start(t, "the all-in-one's AI suggestion browser test", "omnibus-assist")
	base := startSimulated(t)
	waitMounted(t, base, "/sandbox/_admin/customers", "/hooks/wechatkf/callback", "/desk/login", "/api/openapi.json")
	var people struct {
		Customers []struct {
			ID    int
			Phone string
		}
	}
	if code := sandboxCall(t, base, "GET", "/sandbox/_admin/customers", nil, &people); code != 200 || len(people.Customers) < 5 {
		t.Fatalf("sandbox customers: %d %+v", code, people)
	}
	who := people.Customers[4]
	local := strings.TrimPrefix(who.Phone, "+86")
	ctx, cancel := context.WithTimeout(br.Ctx, 2*time.Minute)
	defer cancel()
	p := &page{t: t, br: br, ctx: ctx}

	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(base+"/?lang=zh")); err != nil {
		p.fail("opening the workbench: %v", err)
	}
	p.click("agent-li on the dev login page", `input[name="agent"][value="agent-li"]`)
	p.click("sign in", "#dev-login-submit")
	p.visible("the live connection", "#live.on")

	text := "你好，我的快递三天没更新了，是不是延误了？我的手机 " + local
	if code := sandboxCall(t, base, "POST", fmt.Sprintf("/sandbox/_admin/customers/%d/write", who.ID), map[string]string{"channel": "wechatkf", "text": text}, nil); code != 200 {
		p.fail("customer %d writing: %d", who.ID, code)
	}
	convID := p.poll("the conversation in the inbox", `(() => {
		for (const li of document.querySelectorAll("#conversations li.conv")) {
			const q = li.querySelector(".conv-preview");
			if (q && q.textContent.includes("三天没更新")) return li.dataset.id;
		}
		return "";
	})()`, 100*time.Millisecond)
	p.click("open the conversation", `#conversations li.conv[data-id="`+convID+`"]`)
	p.visible("the customer's message", "#timeline .msg.inbound")

	// Press the button and watch the card grow: the text seen while it is being written must be
	// a beginning of the final suggestion, shorter than it.
	press := func(what string) {
		t.Helper()
		p.click(what, "#tool-ai")
	}
	press("the AI button")
	partial := strings.TrimSpace(p.poll("the suggestion being written", `(() => {
		const e = document.querySelector(".ai-live .live-text");
		return e && e.textContent.length > 0 ? e.textContent + " " : "";
	})()`, 5*time.Millisecond))
	br.Shot(t, "01-suggestion-streaming")
	final := strings.TrimSpace(p.visible("the completed suggestion", ".ai-card:not(.ai-live) .suggestions li span"))
	p.poll("the streamed card replaced", `document.querySelector(".ai-live") ? "" : "y"`, 50*time.Millisecond)
	br.Shot(t, "02-suggestion-completed")
	t.Logf("streamed %q … then %q", partial, final)
	if partial == "" || !strings.HasPrefix(final, partial) || len(partial) >= len(final) {
		p.fail("the streamed text %q is not a growing beginning of the suggestion %q", partial, final)
	}
	// The desk holds the customer's text with the phone masked (the unifier's doing), and the
	// suggestion gives it back as the desk showed it.
	if !strings.Contains(final, "根据《快递延误怎么办》") || !strings.Contains(final, "****"+local[len(local)-4:]) {
		p.fail("the suggestion is not grounded in the parcel-delay article, or lost the phone: %q", final)
	}
	recs := records(t, base, "vendor=openai")
	if len(recs) == 0 {
		p.fail("the sandbox model was never called")
	}
	for _, r := range recs {
		if strings.Contains(string(r.Data), local) || pii.Contains(string(r.Data)) {
			p.fail("the model was sent personal data: %s", r.Data)
		}
	}

	// The agent uses it, adds a sentence and sends it: an edited suggestion, counted on the
	// supervisors' analytics with its edit distance.
	p.click("use the suggestion", ".ai-card:not(.ai-live) .use-suggestion")
	p.poll("the suggestion in the reply box, edited", `(() => {
		const ta = document.querySelector("#reply-text");
		if (!ta || !ta.value) return "";
		ta.value += "祝您生活愉快。";
		return "y";
	})()`, 50*time.Millisecond)
	p.click("send the reply", "#reply-send")
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if code := apiCall(t, base, "POST", "/desk/dev/login?agent=supervisor-wang&role=supervisor&format=token", "", nil, &tok); code != 200 {
		p.fail("supervisor token: %d", code)
	}
	var an struct {
		Rows []struct {
			Model            string  `json:"model"`
			TemplateID       string  `json:"prompt_template_id"`
			Edited           int     `json:"edited"`
			MeanEditDistance float64 `json:"mean_edit_distance"`
		} `json:"rows"`
	}
	bustest.WaitFor(t, 30*time.Second, "the edited suggestion counted", func() bool {
		return apiCall(t, base, "GET", "/api/analytics/suggestions", tok.AccessToken, nil, &an) == 200 && len(an.Rows) == 1 && an.Rows[0].Edited == 1
	})
	if r := an.Rows[0]; r.TemplateID != "assist.suggest.v2" || r.MeanEditDistance != 7 {
		p.fail("analytics row %+v", r)
	}

	// The model goes down: the button still answers, with the articles to answer from.
	if code := sandboxCall(t, base, "PUT", "/sandbox/_admin/faults/"+url.PathEscape("openai chat/completions"),
		map[string]any{"error_ratio": 1, "code": "503"}, nil); code != 200 && code != 204 {
		p.fail("injecting the fault: %d", code)
	}
	start := time.Now()
	press("the AI button with the model down")
	article := p.visible("the fallback articles", ".tool-card.failed .fallback-articles li")
	t.Logf("fallback shown %s after the click", time.Since(start).Round(time.Millisecond))
	br.Shot(t, "03-fallback-articles")
	if !strings.Contains(article, "快递延误怎么办") {
		p.fail("the first fallback article is %q, want the parcel-delay one", article)
	}
}
