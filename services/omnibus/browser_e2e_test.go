package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/omnibus-dev/omnibus/pkg/browsertest"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/services/omnibus/allinone"
	"github.com/omnibus-dev/omnibus/services/sandbox"
)

// The waybill the sandbox's SF Express knows (sfexpress.WaybillDelivered): a fixed, delivered timeline.
const browserWaybill = "SF1234567890123"

// TestBrowserEndToEnd is the acceptance test of the workbench through the whole system, in
// headless Chromium: the all-in-one runs as `go run ./services/omnibus` does (sandbox on,
// scenario off); the agent signs in through the dev login and opens the inbox; then a simulated
// WeChat customer writes (a signed WeCom callback and a kf/sync_msg pull) about their parcel. The
// conversation appears in the inbox without a reload; the agent opens it and sees the 360 panel
// (masked identities only), tracks the parcel (the logistics connector asks the sandbox's SF
// Express), sees the route card and sends it to the customer; the sandbox's WeCom must record the
// kf/send_msg to that customer with the route text. Screenshots go to
// $OMNIBUS_ARTIFACTS/omnibus-e2e (default <repo>/artifacts/omnibus-e2e).
func TestBrowserEndToEnd(t *testing.T) {
	t.Parallel()
	br := browsertest.Start(t, "the all-in-one's browser test", "omnibus-e2e")
	bctx := br.Ctx
	base := startSimulated(t)
	// The all-in-one is ready once it listens; each service mounts its routes as it starts.
	waitMounted(t, base, "/sandbox/_admin/customers", "/hooks/wechatkf/callback", "/desk/login", "/api/openapi.json")

	// The customer who will write: the sandbox's population is deterministic, any one will do.
	var people struct {
		Customers []struct {
			ID       int
			Phone    string
			WeChatID string
		}
	}
	if code := sandboxCall(t, base, "GET", "/sandbox/_admin/customers", nil, &people); code != 200 || len(people.Customers) < 3 {
		t.Fatalf("sandbox customers: %d %+v", code, people)
	}
	who := people.Customers[2]
	if who.WeChatID == "" {
		t.Fatalf("sandbox customer %d has no WeChat id", who.ID)
	}

	// The whole browser part is bounded; every step below waits by polling within this budget.
	ctx, cancel := context.WithTimeout(bctx, 2*time.Minute)
	defer cancel()

	fail := func(format string, args ...any) {
		t.Helper()
		br.Shot(t, "failed")
		t.Fatalf(format, args...)
	}
	// The workbench re-renders the inbox, the timeline and the panel on every live notice, so a
	// node found a moment ago may already be replaced: the waits and reads below evaluate in the
	// page in one go (polling until truthy), and clicks are retried when their node went stale.
	until := func(what, expr string) string {
		t.Helper()
		for {
			v, err := chromedp.Run(ctx, chromedp.Poll[string](expr, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(0)))
			if err == nil {
				return v
			}
			if ctx.Err() != nil {
				fail("%s: %v", what, err)
			}
			// The page navigated or replaced its execution context while polling: poll again.
			t.Logf("%s: %v (polling again)", what, err)
			time.Sleep(100 * time.Millisecond)
		}
	}
	// visible waits until sel matches a rendered element and returns its text.
	visible := func(what, sel string) string {
		t.Helper()
		return until(what, `(() => { const e = document.querySelector(`+jsString(sel)+`); return e && e.getClientRects().length ? e.innerText + " " : ""; })()`)
	}
	click := func(what, sel string) {
		t.Helper()
		for {
			visible(what, sel)
			err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
			if err == nil {
				return
			}
			if ctx.Err() != nil {
				fail("%s: %v", what, err)
			}
			t.Logf("%s: %v (the page re-rendered: clicking again)", what, err)
			time.Sleep(100 * time.Millisecond)
		}
	}
	screenshot := func(name string) { t.Helper(); br.Shot(t, name) }

	// 1. Sign in through the dev login (the workbench redirects to it) and open the inbox, live.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800), chromedp.Navigate(base+"/?lang=zh")); err != nil {
		fail("opening the workbench: %v", err)
	}
	click("agent-li on the dev login page", `input[name="agent"][value="agent-li"]`)
	visible("sign in", "#dev-login-submit")
	if resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS("#dev-login-submit"), chromedp.NodeVisible)); err != nil || resp.Status != http.StatusOK {
		fail("signing in: %v (%+v)", err, resp)
	}
	visible("the inbox", "#conversations li")
	visible("the live connection", "#live.on")
	screenshot("01-inbox")

	// 2. The WeChat customer writes: through the sandbox's WeCom, to the wechatkf connector.
	text := "你好，我的快递 " + browserWaybill + " 到哪了？"
	if code := sandboxCall(t, base, "POST", fmt.Sprintf("/sandbox/_admin/customers/%d/write", who.ID), map[string]string{"channel": "wechatkf", "text": text}, nil); code != 200 {
		fail("customer %d writing on wechatkf: %d", who.ID, code)
	}
	// The conversation appears in the inbox without a reload (the page is never navigated again).
	convID := until("the customer's conversation live in the inbox", `(() => {
		for (const li of document.querySelectorAll("#conversations li.conv")) {
			const p = li.querySelector(".conv-preview");
			if (p && p.textContent.includes(`+jsString(browserWaybill)+`)) return li.dataset.id;
		}
		return "";
	})()`)
	row := `#conversations li.conv[data-id="` + convID + `"]`
	visible("the WeChat badge on the inbox row", row+" .badge.ch-wechatkf")
	screenshot("02-inbox-live")

	// 3. Open it: the timeline holds the customer's message, the 360 panel the customer.
	click("open the conversation", row)
	visible("the customer's message on the timeline", "#timeline .msg.inbound")
	until("the customer's text on the timeline", `(document.querySelector("#timeline") || { innerText: "" }).innerText.includes(`+jsString(text)+`) ? "y" : ""`)
	visible("the 360 panel", "#panel-360 .profile")
	visible("the conversation in the customer's history", "#past-conversations li.current")
	// Identities are shown masked: the WeChat one, and the phone the customer's WeChat entry
	// carried; never a raw value.
	idents := until("the WeChat and phone identities in the 360 panel", `(() => {
		const ids = [...document.querySelectorAll("#panel-360 .identities li")].map((li) =>
			({ kind: li.querySelector(".kind").textContent, masked: li.querySelector("code").textContent, text: li.textContent }));
		const wechat = ids.some((i) => /^(wecom|wechat)_/.test(i.kind) && i.masked.includes("…"));
		const phone = ids.some((i) => i.kind === "phone" && i.masked.includes("****"));
		return wechat && phone ? ids.map((i) => i.text).join(" | ") : "";
	})()`)
	noRaw := func(panel string) {
		t.Helper()
		for _, raw := range []string{who.WeChatID, who.Phone, strings.TrimPrefix(who.Phone, "+86")} {
			if strings.Contains(panel, raw) {
				fail("the 360 panel shows the raw identity %q: %q", raw, panel)
			}
		}
	}
	noRaw(visible("the 360 panel", "#panel-360"))
	t.Logf("360 identities: %s", idents)
	screenshot("03-conversation-360")

	// 4. Track the parcel: the number is prefilled from the customer's message (filled in if not).
	click("track parcel", "#tool-track")
	visible("the track form", "#track-number")
	if number := until("the tracking number", `(() => { const e = document.querySelector("#track-number"); return e ? "=" + e.value : ""; })()`); number != "="+browserWaybill {
		t.Logf("the track form is prefilled with %q: filling in %s", number[1:], browserWaybill)
		until("fill in the tracking number", `(() => { const e = document.querySelector("#track-number"); if (!e) return ""; e.value = `+jsString(browserWaybill)+`; return "y"; })()`)
	}
	click("submit the track form", "#tool-submit")
	// The real logistics connector asks the sandbox's SF Express; its answer reaches the desk
	// through the unifier as the route card.
	card := `.route-card[data-tracking="` + browserWaybill + `"]`
	visible("the route card's send button", card+" .send-route")
	if route := visible("the route card", card); !strings.Contains(route, browserWaybill) {
		fail("the route card lacks the waybill: %q", route)
	}
	// The CRM found the customer by the phone of their WeChat entry: by now (the tool request was
	// a change of this customer's conversation, which reloads the panel) its fields fill the
	// panel, each with its source.
	crm := until("the CRM profile in the 360 panel", `(() => {
		const f = document.querySelector("#panel-360 dl.fields");
		return f && f.querySelector("dd .source") ? f.innerText : "";
	})()`)
	noRaw(visible("the 360 panel", "#panel-360"))
	t.Logf("360 CRM fields: %s", strings.Join(strings.Fields(crm), " "))
	// The newest event's description (the text node after the time and place) goes into the message.
	latest := until("the latest route event", `(() => { const li = document.querySelector(`+jsString(card+" .route-events li")+`); return li && li.lastChild ? li.lastChild.textContent.trim() : ""; })()`)
	screenshot("04-route-card")

	// 5. Send it to the customer: the reply goes out on WeChat, and the sandbox's WeCom records it.
	after := lastRecord(t, base)
	click("send the route to the customer", card+" .send-route")
	var sent string
	for sent == "" {
		for _, r := range records(t, base, "vendor=wecom&op=kf/send_msg&to="+who.WeChatID+"&after="+after) {
			var body struct {
				Text *struct {
					Content string `json:"content"`
				} `json:"text"`
			}
			if r.Error == "" && json.Unmarshal(r.Data, &body) == nil && body.Text != nil && strings.Contains(body.Text.Content, browserWaybill) {
				sent = body.Text.Content
			}
		}
		if sent != "" {
			break
		}
		select {
		case <-ctx.Done():
			fail("no kf/send_msg with the route to %s recorded by the sandbox's WeCom: %v (all sends: %+v)", who.WeChatID, ctx.Err(),
				records(t, base, "vendor=wecom&op=kf/send_msg"))
		case <-time.After(200 * time.Millisecond):
		}
	}
	if !strings.Contains(sent, latest) {
		fail("the message sent to the customer %q lacks the route's latest event %q", sent, latest)
	}
	// The timeline shows the reply with the route text; its status follows the connector's report.
	status := until("the reply's delivery status on the timeline", `(() => {
		for (const m of document.querySelectorAll("#timeline .msg.outbound")) {
			const st = m.querySelector(".status");
			if (m.textContent.includes(`+jsString(browserWaybill)+`) && st && !st.classList.contains("st-pending")) return st.className;
		}
		return "";
	})()`)
	if !strings.Contains(status, "st-sent") && !strings.Contains(status, "st-delivered") {
		fail("the reply's status on the timeline is %q, want sent or delivered", status)
	}
	t.Logf("sent to %s: %q (%s)", who.WeChatID, sent, status)
	screenshot("05-sent")
}

// startSimulated runs the all-in-one as `go run ./services/omnibus` does, with the sandbox's
// scenario off, until the test ends; it returns the base URL.
func startSimulated(t *testing.T) string {
	t.Helper()
	return startSimulatedWith(t, nil)
}

// startSimulatedWith is startSimulated with some variables set (they win over the test's).
func startSimulatedWith(t *testing.T, set map[string]string) string {
	t.Helper()
	cfg := allinone.Config{
		HTTPAddr: "127.0.0.1:0", NATSAddr: "127.0.0.1:0", NATSSync: "always", DataDir: t.TempDir(),
		Simulate: true, SimInterval: time.Hour, LogLevel: "warn", ShutdownTimeout: 15 * time.Second,
	}
	env := map[string]string{"EXAMPLE_SECRET": "s", "SANDBOX_SCENARIO_INTERVAL": "0", "SANDBOX_TCCC_CALL_INTERVAL": "0"}
	for k, v := range localEnv(cfg.DataDir) {
		env[k] = v
	}
	env["VOICE_SIP_LISTEN"] = "127.0.0.1:0" // tests run side by side: no fixed port
	for k, v := range set {
		env[k] = v
	}
	log := violationLog(t)
	ctx, cancel := context.WithCancel(context.Background())
	baseCh := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- allinone.Run(ctx, cfg, func(base string) []service.Service {
			for k, v := range sandbox.ConnectorEnv(base) {
				if _, set := env[k]; !set {
					env[k] = v
				}
			}
			return append(services(), simulated()...)
		}, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, log, func(b string) { baseCh <- b })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("all-in-one stopped with %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("all-in-one did not stop within 30s")
		}
	})
	select {
	case base := <-baseCh:
		return base
	case err := <-done:
		t.Fatalf("all-in-one exited: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("all-in-one not ready after 60s")
	}
	return ""
}

// waitMounted waits until every path answers something other than 404: its service mounted it.
func waitMounted(t *testing.T, base string, paths ...string) {
	t.Helper()
	for _, p := range paths {
		bustest.WaitFor(t, 60*time.Second, p+" mounted", func() bool {
			resp, err := http.Get(base + p)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode != http.StatusNotFound
		})
	}
}

// sandboxCall does a JSON request against the all-in-one and decodes a 2xx answer into out.
func sandboxCall(t *testing.T, base, method, path string, body, out any) int {
	t.Helper()
	return apiCall(t, base, method, path, "", body, out) // e2e_test.go
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string { b, _ := json.Marshal(s); return string(b) }
