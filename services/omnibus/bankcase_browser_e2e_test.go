package main

import (
	"context"
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/omnibus-dev/omnibus/pkg/browsertest"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
)

// bankCaseCustomer is a sandbox customer the CRM holds at the top tier (VIP_Level__c 钻石: the
// sandbox's Contacts give id%4 == 3 that level, and id 11 has a mobile, a membership and no
// duplicate record).
const bankCaseCustomer = 11

// TestBrowserBankCase walks the seed's bank case through the whole system in headless Chromium,
// keeping a screenshot of each step: a top-tier customer phones the hotline (the sandbox's SIP
// caller, real SIP and RTP to the voice connector); while the call still rings, the agent's desk
// pops the caller's conversation with the CRM record (tier, history); the call is transcribed
// live (the sandbox ASR over the vendor's real protocol) and the customer, calm at first, speaks
// an order number, then turns angry about a double charge — the sentiment alert reaches the desk;
// the agent presses the AI button and a suggestion grounded in the double-charge article streams
// in; the caller hangs up.
func TestBrowserBankCase(t *testing.T) {
	t.Parallel()
	br := browsertest.Start(t, "the bank case browser test", "omnibus-bankcase")
	base := startSimulatedWith(t, map[string]string{
		"VOICE_SIP_LISTEN":           "127.0.0.1:" + freeUDPPort(t),
		"VOICE_RING":                 "3s", // the screen pop is asserted while it rings
		"SANDBOX_CALL_INTERVAL":      "0",  // no scheduled calls: only this test's
		"SANDBOX_TCCC_CALL_INTERVAL": "0",
	})
	waitMounted(t, base, "/sandbox/_admin/customers", "/desk/login", "/api/openapi.json")
	ctx, cancel := context.WithTimeout(br.Ctx, 3*time.Minute)
	defer cancel()
	p := &page{t: t, br: br, ctx: ctx}
	shot := func(name string) { br.Shot(t, name) }

	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1400, 950), chromedp.Navigate(base+"/?lang=zh")); err != nil {
		p.fail("opening the workbench: %v", err)
	}
	p.click("agent-li on the dev login page", `input[name="agent"][value="agent-li"]`)
	p.click("sign in", "#dev-login-submit")
	p.visible("the live connection", "#live.on")

	// Agent Li is the one agent on shift: the call's conversation is hers.
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if code := apiCall(t, base, "POST", "/desk/dev/login?agent=supervisor-wang&role=supervisor&format=token", "", nil, &tok); code != 200 {
		p.fail("supervisor token: %d", code)
	}
	var agents struct {
		Agents []struct {
			ID string `json:"id"`
		} `json:"agents"`
	}
	if code := apiCall(t, base, "GET", "/api/agents", tok.AccessToken, nil, &agents); code != 200 {
		p.fail("agents: %d", code)
	}
	for _, a := range agents.Agents {
		if code := apiCall(t, base, "PUT", "/api/agents/"+a.ID, tok.AccessToken, map[string]bool{"active": a.ID == "agent-li"}, nil); code != 200 {
			p.fail("agent %s on shift=%v: %d", a.ID, a.ID == "agent-li", code)
		}
	}

	// The customer calls: a calm opening, the order number, then the anger.
	var placed struct {
		From string   `json:"from"`
		Said []string `json:"said"`
	}
	bustest.WaitFor(t, 30*time.Second, "the sandbox placing the call", func() bool {
		return sandboxCall(t, base, "POST", "/sandbox/_admin/customers/"+strconv.Itoa(bankCaseCustomer)+"/call",
			map[string]any{"say": []string{"zh-card-bill", "zh-order-so", "zh-double-charge-angry"}, "pause_ms": 1500, "tail_ms": 2500}, &placed) == 202
	})
	t.Logf("customer %d calls from %s saying %q", bankCaseCustomer, placed.From, placed.Said)

	// Screen pop: the ringing banner, and the caller's conversation opened with the CRM record,
	// before the answer.
	p.visible("the ringing call's banner", ".banner-call")
	tier := p.poll("the CRM record in the 360° panel while the call rings", `(() => {
		const panel = document.querySelector("#panel-360"), ringing = document.querySelector(".banner-call");
		return panel && ringing && panel.innerText.includes("钻石") ? panel.innerText : "";
	})()`, 50*time.Millisecond)
	shot("01-screen-pop-crm")
	if !strings.Contains(tier, "钻石") {
		p.fail("the panel lacks the CRM tier: %q", tier)
	}

	// The live transcript: the order number, then the anger, as the customer's messages.
	p.poll("the transcript's order number", `(() => {
		for (const m of document.querySelectorAll("#timeline .msg.inbound")) if (m.innerText.includes("SO2026120700001234")) return "y";
		return "";
	})()`, 100*time.Millisecond)
	p.poll("the transcript's complaint", `(() => {
		for (const m of document.querySelectorAll("#timeline .msg.inbound")) if (m.innerText.includes("扣了两次")) return "y";
		return "";
	})()`, 100*time.Millisecond)
	shot("02-live-transcript")

	// The emotion alert on the agent's desk.
	alert := p.visible("the sentiment alert", "#alerts .banner-warn")
	shot("03-emotion-alert")
	t.Logf("alert: %q", alert)
	convID := strings.TrimSpace(p.poll("the call's conversation", `(() => {
		const li = document.querySelector("#conversations li.conv");
		return li ? li.dataset.id : "";
	})()`, 50*time.Millisecond))
	reportAlertDelay(t, base, tok.AccessToken, convID)

	// A calming suggestion, grounded in the double-charge article, streams in.
	p.click("the AI button", "#tool-ai")
	p.poll("the suggestion being written", `(() => {
		const e = document.querySelector(".ai-live .live-text, .ai-card:not(.ai-live) .suggestions li span");
		return e && e.textContent.length > 0 ? "y" : "";
	})()`, 10*time.Millisecond)
	shot("04-suggestion-streaming")
	final := p.visible("the completed suggestion", ".ai-card:not(.ai-live) .suggestions li span")
	shot("05-suggestion")
	if !strings.Contains(final, "银行卡重复扣款") {
		p.fail("the suggestion is not grounded in the double-charge article: %q", final)
	}

	// The caller hangs up: the call ends, and one ticket carries the spoken order number.
	p.visible("the ended call", "#timeline .call-ended")
	ticket := p.poll("the automatic ticket on the timeline", `(() => {
		for (const c of document.querySelectorAll("#timeline .tool-card")) if (c.innerText.includes("ticket")) return c.innerText;
		return "";
	})()`, 200*time.Millisecond)
	shot("06-ticket")
	t.Logf("ticket card: %q", ticket)
	var created []record
	bustest.WaitFor(t, 30*time.Second, "the ticket in the sandbox's tracker", func() bool {
		created = nil
		for _, r := range append(records(t, base, "vendor=jira"), records(t, base, "vendor=zendesk")...) {
			if (r.Op == "issue/create" || r.Op == "tickets/create") && r.Error == "" {
				created = append(created, r)
			}
		}
		return len(created) > 0
	})
	if !strings.Contains(string(created[0].Data), "SO2026120700001234") {
		p.fail("the ticket lacks the spoken order number: %s", created[0].Data)
	}

	// The agent closes the conversation: its summary shows in past conversations.
	p.click("close the conversation", "#close")
	summary := p.visible("the summary in past conversations", "#past-conversations .conv-summary")
	shot("07-summary")
	t.Logf("summary: %q", summary)
	if !strings.Contains(summary, "SO2026120700001234") {
		p.fail("the summary does not name the order: %q", summary)
	}
	// The voice that turned angry was measured so, against the caller's calm opening.
	var msgs struct {
		Messages []struct {
			Body struct {
				Text string `json:"text"`
				Tone *struct {
					Label   string  `json:"label"`
					Arousal float64 `json:"arousal"`
				} `json:"tone"`
			} `json:"body"`
		} `json:"messages"`
	}
	if code := apiCall(t, base, "GET", "/api/conversations/"+convID+"/messages", tok.AccessToken, nil, &msgs); code != 200 {
		p.fail("messages: %d", code)
	}
	toned := 0
	for _, m := range msgs.Messages {
		if tone := m.Body.Tone; tone != nil {
			toned++
			t.Logf("%q: voice %s (arousal %.2f)", m.Body.Text, tone.Label, tone.Arousal)
			if strings.Contains(m.Body.Text, "扣了两次") && tone.Label == "calm" {
				p.fail("the angry sentence's voice measured calm")
			}
		}
	}
	if toned == 0 {
		raw := map[string]any{}
		apiCall(t, base, "GET", "/api/conversations/"+convID+"/messages", tok.AccessToken, nil, &raw)
		b, _ := json.Marshal(raw)
		p.fail("no message of the call carries the caller's voice tone: %s", b)
	}
	// Once: a second ticket (the close after the call) would have come by now.
	if n := len(created); n != 1 {
		p.fail("%d tickets created for the call, want 1", n)
	}
	for _, r := range append(records(t, base, "vendor=jira"), records(t, base, "vendor=zendesk")...) {
		if (r.Op == "issue/create" || r.Op == "tickets/create") && r.Error == "" && r.Seq != created[0].Seq {
			p.fail("a second ticket: %s", r.Data)
		}
	}
}

// reportAlertDelay logs how long after the customer's angry segment the alert was raised (the
// issue's ≤ 2 s; reported, not asserted: the machine is shared).
func reportAlertDelay(t *testing.T, base, token, conv string) {
	t.Helper()
	var alerts struct {
		Alerts []struct {
			Kind           string    `json:"kind"`
			ConversationID string    `json:"conversation_id"`
			At             time.Time `json:"at"`
		} `json:"alerts"`
	}
	if code := apiCall(t, base, "GET", "/api/alerts", token, nil, &alerts); code != 200 {
		t.Fatalf("alerts: %d", code)
	}
	for _, a := range alerts.Alerts {
		if a.Kind == "ops" || a.ConversationID != conv {
			continue
		}
		var msgs struct {
			Messages []struct {
				Direction string          `json:"direction"`
				Channel   string          `json:"channel"`
				Body      json.RawMessage `json:"body"`
				SentAt    time.Time       `json:"sent_at"`
			} `json:"messages"`
		}
		if apiCall(t, base, "GET", "/api/conversations/"+a.ConversationID+"/messages", token, nil, &msgs) != 200 {
			continue
		}
		for _, m := range msgs.Messages {
			if m.Channel == "voice" && strings.Contains(string(m.Body), "扣了两次") {
				t.Logf("the sentiment alert was raised %s after the angry segment's message time", a.At.Sub(m.SentAt).Round(time.Millisecond))
			}
		}
	}
}

// freeUDPPort returns a loopback UDP port free at the time of the call.
func freeUDPPort(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, port, _ := net.SplitHostPort(c.LocalAddr().String())
	return port
}
