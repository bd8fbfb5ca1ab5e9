package openai_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/omnibus-dev/omnibus/services/sandbox/openai"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

func setup(t *testing.T) (*sim.Env, string) {
	t.Helper()
	mux := http.NewServeMux()
	env := sim.NewEnv(mux, "http://127.0.0.1:1/hooks", nil, 0, slog.New(slog.DiscardHandler))
	if _, err := openai.New(env, openai.Config{APIKey: "sk-test"}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return env, srv.URL + "/sandbox/openai/v1/chat/completions"
}

func post(t *testing.T, url, key, body string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

const body = `{"model":"qwen-plus","stream":true,"stream_options":{"include_usage":true},"messages":[
	{"role":"system","content":"be kind"},{"role":"user","content":"我的电话 <PHONE_1>"},{"role":"assistant","content":"好的"},{"role":"user","content":"快递到哪了"}]}`

func TestChatCompletions(t *testing.T) {
	t.Parallel()
	env, url := setup(t)
	t.Run("stream", func(t *testing.T) {
		status, h, got := post(t, url, "sk-test", body)
		if status != 200 || h.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("%d %s: %s", status, h.Get("Content-Type"), got)
		}
		if !strings.HasSuffix(got, "data: [DONE]\n\n") || !strings.Contains(got, `"usage":{"prompt_tokens"`) ||
			!strings.Contains(got, `"finish_reason":"stop"`) || !strings.Contains(got, `"delta":{"content":"","role":"assistant"}`) {
			t.Fatalf("stream:\n%s", got)
		}
		if want := "您好，已收到您的消息「快递到哪了」。我们已记录 <PHONE_1>，会尽快为您处理。"; openai.Reply([]openai.Message{
			{Role: "user", Content: "我的电话 <PHONE_1>"}, {Role: "user", Content: "快递到哪了"}}) != want {
			t.Fatalf("Reply template changed")
		}
	})
	t.Run("bad key", func(t *testing.T) {
		status, _, got := post(t, url, "sk-wrong", body)
		if status != 401 || !strings.Contains(got, `"code":"invalid_api_key"`) {
			t.Fatalf("%d %s", status, got)
		}
	})
	t.Run("no model", func(t *testing.T) {
		status, _, got := post(t, url, "sk-test", `{"messages":[{"role":"user","content":"x"}]}`)
		if status != 400 || !strings.Contains(got, `"param":"model"`) {
			t.Fatalf("%d %s", status, got)
		}
	})
	if len(env.Records(sim.Filter{Vendor: openai.Vendor})) == 0 {
		t.Fatal("no record of the accepted call")
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	env, url := setup(t)
	key := openai.Vendor + " " + openai.OpChat
	if err := env.SetFault(key, sim.Fault{ErrorRatio: 1, Code: "429:2"}); err != nil {
		t.Fatal(err)
	}
	if status, h, got := post(t, url, "sk-test", body); status != 429 || h.Get("Retry-After") != "2" || !strings.Contains(got, "rate_limit") {
		t.Fatalf("429: %d %v %s", status, h, got)
	}
	if err := env.SetFault(key, sim.Fault{ErrorRatio: 1, Code: openai.FaultTruncated}); err != nil {
		t.Fatal(err)
	}
	if status, _, got := post(t, url, "sk-test", body); status != 200 || strings.Contains(got, "[DONE]") {
		t.Fatalf("truncated: %d %s", status, got)
	}
}

// TestGroundedReply: given knowledge-base articles, the model answers from the first one.
func TestGroundedReply(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, system, want string
	}{
		{"chinese", "你是助手。\n\n知识库文章：\n[kb:kb-refund] 银行卡重复扣款\n重复扣款的金额会在 1-3 个工作日内原路退回。如未到账请联系发卡行。\n[kb:kb-2] 其他\n无关。",
			"您好，已收到您的消息「扣了两次」。根据《银行卡重复扣款》：重复扣款的金额会在 1-3 个工作日内原路退回。我们会尽快为您处理。"},
		{"english", "Assist.\n[kb:kb-en] Refund times\nRefunds reach the original card within 3-5 days. Contact us otherwise.",
			"您好，已收到您的消息「扣了两次」。根据《Refund times》：Refunds reach the original card within 3-5 days.我们会尽快为您处理。"},
		{"no article", "你是助手。", "您好，已收到您的消息「扣了两次」。我们会尽快为您处理。"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := openai.Reply([]openai.Message{{Role: "system", Content: tc.system}, {Role: "user", Content: "扣了两次"}})
			if got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestJSONReply: in JSON mode the model answers summaries and extractions from the transcript it
// was given, with the fields its json_schema (or the system message) asks for.
func TestJSONReply(t *testing.T) {
	t.Parallel()
	msgs := []openai.Message{{Role: "system", Content: `Answer in JSON with "summary", "business_type", "order_numbers", "waybills", "amounts", "request", "complaint".`},
		{Role: "user", Content: "[客户] 我的订单 SO2612070123456789 要退款 299 元，电话 <PHONE_1>\n[坐席] 好的，已为您提交退款\n[客户] 快递单号 SF1234567890123"}}
	got, err := openai.JSONReply(msgs, &openai.ResponseFormat{Type: "json_object"})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"amounts":["299.00"],"business_type":"order","complaint":false,"order_numbers":["SO2612070123456789"],"request":"我的订单 SO2612070123456789 要退款 299 元，电话 <PHONE_1>",` +
		`"summary":"客户诉求：我的订单 SO2612070123456789 要退款 299 元，电话 <PHONE_1>。涉及订单 SO2612070123456789。运单 SF1234567890123。金额 299.00 元。坐席答复：好的，已为您提交退款。","waybills":["SF1234567890123"]}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	rf := &openai.ResponseFormat{Type: "json_schema"}
	rf.JSONSchema = &struct {
		Name   string          `json:"name"`
		Strict bool            `json:"strict,omitempty"`
		Schema json.RawMessage `json:"schema"`
	}{Name: "s", Schema: json.RawMessage(`{"type":"object","properties":{"summary":{"type":"string"}}}`)}
	if got, err := openai.JSONReply([]openai.Message{{Role: "user", Content: "Where is my parcel YT7512345678901?"}}, rf); err != nil ||
		got != `{"summary":"The customer asked: Where is my parcel YT7512345678901. Waybills: YT7512345678901."}` {
		t.Fatalf("%s %v", got, err)
	}
	if _, err := openai.JSONReply([]openai.Message{{Role: "user", Content: "hi"}}, &openai.ResponseFormat{Type: "json_object"}); err == nil {
		t.Fatal("json_object without the word json in the messages")
	}
}
