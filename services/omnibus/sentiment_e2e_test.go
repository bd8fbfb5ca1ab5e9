package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
)

// TestSentimentAlertOnTheDesk runs the whole system as `go run ./services/omnibus` does: a
// simulated customer writes an angry message on WeChat (through the sandbox's WeCom, the wechatkf
// connector and the unifier); the sentiment connector scores it with the sandbox's Tencent Cloud
// NLP and raises the alert; the desk shows it to a supervisor — the banner on the conversation,
// the mark in the inbox and on the message — within 2 seconds of the message reaching the desk.
// A calmer follow-up clears it. No timing is asserted beyond the wait's deadline.
func TestSentimentAlertOnTheDesk(t *testing.T) {
	t.Parallel()
	base := startSimulated(t) // browser_e2e_test.go
	call := func(method, path, token string, body any, out any) int {
		t.Helper()
		return apiCall(t, base, method, path, token, body, out) // e2e_test.go
	}
	token := devToken(t, base, "agent=supervisor-wang&role=supervisor")
	write := func(text string) {
		t.Helper()
		if code := call("POST", "/sandbox/_admin/customers/7/write", "", map[string]string{"channel": "wechatkf", "text": text}, nil); code != 200 {
			t.Fatalf("wechat write: %d", code)
		}
	}
	type timeline struct {
		Conversation struct {
			ID        string `json:"id"`
			Sentiment string `json:"sentiment"`
		} `json:"conversation"`
		Items []struct {
			Kind    string `json:"kind"`
			Message *struct {
				EventID string `json:"event_id"`
			} `json:"message"`
		} `json:"items"`
		Sentiment map[string]struct {
			Label    string `json:"label"`
			Provider string `json:"provider"`
		} `json:"sentiment"`
		Alert *struct {
			ID     string          `json:"id"`
			Detail json.RawMessage `json:"detail"`
		} `json:"sentiment_alert"`
	}
	var convID string
	var tl timeline
	load := func() int {
		var out timeline
		code := call("GET", "/api/conversations/"+convID+"/timeline", token, nil, &out)
		tl = out
		return code
	}
	messages := func() int {
		n := 0
		for _, it := range tl.Items {
			if it.Kind == "message" {
				n++
			}
		}
		return n
	}

	write("我的快递一周了还没到，怎么回事？都说了三天到，你们这服务太差了，再不解决我就要投诉！！")
	convID = channelConversation(t, base, token, "wechatkf")
	ok := false
	defer func() {
		if !ok {
			raw, _ := json.Marshal(tl)
			t.Logf("timeline of %s: %s", convID, raw)
		}
	}()
	bustest.WaitFor(t, 30*time.Second, "the message on the timeline", func() bool { return load() == 200 && messages() >= 1 })
	bustest.WaitFor(t, 2*time.Second, "the alert on the desk, within 2 s of the message", func() bool {
		return load() == 200 && tl.Alert != nil
	})
	bustest.WaitFor(t, 5*time.Second, "the message's mark and the inbox mark", func() bool {
		return load() == 200 && len(tl.Sentiment) == 1 && tl.Conversation.Sentiment == "negative"
	})
	for _, m := range tl.Sentiment {
		if m.Label != "negative" || m.Provider != "tencent" {
			t.Fatalf("mark %+v: the sandbox's Tencent NLP scores it", m)
		}
	}
	// The customer calms down: two kind messages end the episode.
	write("好的，谢谢，问题解决了！")
	bustest.WaitFor(t, 30*time.Second, "the second message scored", func() bool { return load() == 200 && len(tl.Sentiment) == 2 })
	write("退款收到了，谢谢你们，非常满意")
	bustest.WaitFor(t, 30*time.Second, "the alert cleared", func() bool {
		return load() == 200 && len(tl.Sentiment) == 3 && tl.Alert == nil && tl.Conversation.Sentiment != "negative"
	})
	ok = true
}
