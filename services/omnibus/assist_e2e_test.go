package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/pii"
)

// TestAISuggestionOnTheDesk runs the whole system as `go run ./services/omnibus` does: a
// customer writes on WeChat, leaving their phone number; the agent presses the desk's AI
// suggestion button (POST .../tools/ai/suggest); the assist connector asks the sandbox's
// OpenAI-compatible vendor, and the suggestion lands on the conversation's timeline. The vendor
// must have been sent no raw phone number.
func TestAISuggestionOnTheDesk(t *testing.T) {
	t.Parallel()
	base := startSimulated(t) // browser_e2e_test.go

	call := func(method, path, token string, body any, out any) int {
		t.Helper()
		return apiCall(t, base, method, path, token, body, out) // e2e_test.go
	}
	var people struct {
		Customers []struct{ Phone string }
	}
	bustest.WaitFor(t, 30*time.Second, "the sandbox's customers", func() bool {
		return call("GET", "/sandbox/_admin/customers", "", nil, &people) == 200 && len(people.Customers) >= 3
	})
	local := strings.TrimPrefix(people.Customers[2].Phone, "+86")
	if code := call("POST", "/sandbox/_admin/customers/3/write", "", map[string]string{"channel": "wechatkf",
		"text": "你好，我的快递还没到，手机 " + local}, nil); code != 200 {
		t.Fatalf("wechat write: %d", code)
	}
	token := devToken(t, base, "agent=agent-li")
	convID := channelConversation(t, base, token, "wechatkf")
	// Wait for the message itself on the timeline: the button sends the recent turns.
	type item struct {
		Kind   string `json:"kind"`
		Result *struct {
			Tool    string          `json:"tool"`
			Op      string          `json:"op"`
			Outcome string          `json:"outcome"`
			Result  json.RawMessage `json:"result"`
		} `json:"result"`
	}
	timeline := func() []item {
		var out struct {
			Items []item `json:"items"`
		}
		call("GET", "/api/conversations/"+convID+"/timeline", token, nil, &out)
		return out.Items
	}
	bustest.WaitFor(t, 30*time.Second, "the customer's message on the timeline", func() bool {
		for _, it := range timeline() {
			if it.Kind == "message" {
				return true
			}
		}
		return false
	})
	// The desk fills the request's context from its store, which may lag its timeline by a
	// moment (a 409 with Retry-After then): press again, as an agent would.
	bustest.WaitFor(t, 30*time.Second, "the AI suggestion request accepted", func() bool {
		return call("POST", "/api/conversations/"+convID+"/tools/ai/suggest", token, map[string]any{}, nil) == http.StatusAccepted
	})
	var res struct {
		Suggestions []struct {
			Text string `json:"text"`
		} `json:"suggestions"`
		Provenance struct {
			PromptTemplateID string   `json:"prompt_template_id"`
			InputEventIDs    []string `json:"input_event_ids"`
		} `json:"provenance"`
	}
	bustest.WaitFor(t, 30*time.Second, "the AI suggestion on the timeline", func() bool {
		for _, it := range timeline() {
			if it.Kind == "tool_result" && it.Result != nil && it.Result.Tool == "ai" && it.Result.Op == "suggest" {
				if it.Result.Outcome != "completed" {
					t.Fatalf("AI suggestion %s: %s", it.Result.Outcome, it.Result.Result)
				}
				if err := json.Unmarshal(it.Result.Result, &res); err != nil {
					t.Fatal(err)
				}
				return true
			}
		}
		return false
	})
	if len(res.Suggestions) != 1 || !strings.Contains(res.Suggestions[0].Text, "快递还没到") ||
		res.Provenance.PromptTemplateID == "" || len(res.Provenance.InputEventIDs) != 1 {
		t.Fatalf("suggestion %+v", res)
	}
	recs := records(t, base, "vendor=openai")
	if len(recs) == 0 {
		t.Fatal("the sandbox's openai vendor recorded no call")
	}
	for _, r := range recs {
		if strings.Contains(string(r.Data), local) || pii.Contains(string(r.Data)) {
			t.Fatalf("the model was sent a phone number: %s", r.Data)
		}
	}
}
