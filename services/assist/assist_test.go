package assist_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/config"
	"github.com/omnibus-dev/omnibus/pkg/connector/connectortest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/pii"
	"github.com/omnibus-dev/omnibus/pkg/schema"
	"github.com/omnibus-dev/omnibus/pkg/service/servicetest"
	"github.com/omnibus-dev/omnibus/services/assist"
	"github.com/omnibus-dev/omnibus/services/sandbox/openai"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

const (
	convID   = "c1d2e3f4-a5b6-5c7d-8e9f-0a1b2c3d4e5f"
	custID   = "3f6c1b8e-2d4a-5e7f-9a1b-6c2d8e4f0a13"
	apiKey   = "sk-assist-test"
	chatKey  = openai.Vendor + " " + openai.OpChat
	mobile   = "13800138000"
	idCard   = "11010519491231002X"
	bankCard = "6222021234567890128"
)

// chunkDelay paces the sandbox model's stream, so that its pieces arrive one by one.
const chunkDelay = 5 * time.Millisecond

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type testBundle struct {
	bus *bustest.Bundle
	env *sim.Env
}

// setup starts the sandbox's OpenAI-compatible vendor on loopback and the connector on a fresh
// JetStream; extra overrides the connector's environment.
func setup(t testing.TB, extra map[string]string) testBundle {
	t.Helper()
	b := bustest.New(t, bus.WithLogger(quiet()))
	env, cfg := sandbox(t)
	for k, v := range extra {
		cfg[k] = v
	}
	servicetest.Run(t, assist.Service(), b.Client, nil, cfg)
	return testBundle{bus: b, env: env}
}

// sandbox starts the simulated OpenAI-compatible vendor and returns the connector's environment
// pointing at it.
func sandbox(t testing.TB) (*sim.Env, map[string]string) {
	t.Helper()
	return sandboxPaced(t, chunkDelay)
}

// sandboxPaced is sandbox with the model's pause before each streamed piece.
func sandboxPaced(t testing.TB, delay time.Duration) (*sim.Env, map[string]string) {
	t.Helper()
	mux := http.NewServeMux()
	env := sim.NewEnv(mux, "http://127.0.0.1:1/hooks", nil, 0, quiet())
	if _, err := openai.New(env, openai.Config{APIKey: apiKey, ChunkDelay: delay}); err != nil {
		t.Fatal(err)
	}
	sb := httptest.NewServer(mux)
	t.Cleanup(sb.Close)
	return env, map[string]string{"ASSIST_API_KEY": apiKey, "ASSIST_API_BASE": sb.URL + "/sandbox/openai/v1", "ASSIST_BUDGET": "10s",
		"RESILIENCE_LLM_CHAT_TIMEOUT": "2s", "RESILIENCE_LLM_CHAT_BACKOFF": "10ms", "RESILIENCE_LLM_JOBS_TIMEOUT": "2s", "RESILIENCE_LLM_JOBS_BACKOFF": "10ms"}
}

// TestConformance runs the tool connectors' conformance suite against the sandbox.
func TestConformance(t *testing.T) {
	t.Parallel()
	connectortest.RunTool(t, connectortest.ToolHarness{
		Spec: assist.Spec, Service: assist.Service(),
		Setup: func(t *testing.T) map[string]string { _, cfg := sandbox(t); return cfg },
		Request: func(t *testing.T, n int) (string, event.Event) {
			e, err := event.New(assist.TypeRequested, "/desk", map[string]any{"conversation_id": convID, "customer_id": custID,
				"context": []turn{{Role: "customer", Text: fmt.Sprintf("我的订单 %d 什么时候到？", n)}}},
				event.WithSubject(convID), event.WithPartitionKey(convID))
			if err != nil {
				t.Fatal(err)
			}
			return assist.SubjectRequested, e
		},
	})
}

type turn struct {
	Role string `json:"role"`
	Text string `json:"text"`
}

// request publishes a suggestion request as the desk does and returns its id.
func (tb testBundle) request(t testing.TB, turns ...turn) string {
	t.Helper()
	return tb.publishRequest(t, map[string]any{"conversation_id": convID, "customer_id": custID, "language": "zh", "context": turns, "agent_id": "demo"})
}

// publishRequest publishes a suggestion request with data and returns its id.
func (tb testBundle) publishRequest(t testing.TB, data map[string]any) string {
	t.Helper()
	e, err := event.New(assist.TypeRequested, "/desk", data, event.WithSubject(convID), event.WithPartitionKey(convID))
	if err != nil {
		t.Fatal(err)
	}
	e.SetExtension(event.ExtCorrelationID, e.ID())
	if err := schema.Default().Validate(e.Type(), e.Data()); err != nil {
		t.Fatal(err)
	}
	if err := tb.bus.Client.Publish(context.Background(), assist.SubjectRequested, e); err != nil {
		t.Fatal(err)
	}
	return e.ID()
}

// answer waits for the result answering request id.
func (tb testBundle) answer(t testing.TB, id string) event.Event {
	t.Helper()
	var got event.Event
	bustest.WaitFor(t, 20*time.Second, "the answer to "+id, func() bool {
		for _, e := range tb.bus.Events(t, bus.StreamTool, "omni.tool.ai.suggest.*") {
			if e.Type() != assist.TypeRequested && event.CorrelationID(e) == id {
				got = e
				return true
			}
		}
		return false
	})
	if err := schema.Default().Validate(got.Type(), got.Data()); err != nil {
		t.Fatalf("%s not schema-valid: %v\n%s", got.Type(), err, got.Data())
	}
	if got.ID() != "assist:suggest:"+id || got.Subject() != convID {
		t.Fatalf("id %s subject %s", got.ID(), got.Subject())
	}
	return got
}

type result struct {
	Provider    string `json:"provider"`
	Model       string `json:"model"`
	Suggestions []struct {
		Text string `json:"text"`
	} `json:"suggestions"`
	Provenance struct {
		Provider             string   `json:"provider"`
		Model                string   `json:"model"`
		PromptTemplateID     string   `json:"prompt_template_id"`
		PromptTemplateSHA256 string   `json:"prompt_template_sha256"`
		InputEventIDs        []string `json:"input_event_ids"`
		LatencyMS            *int64   `json:"latency_ms"`
		Usage                *struct {
			PromptTokens     int `json:"prompt_tokens"`
			CompletionTokens int `json:"completion_tokens"`
			TotalTokens      int `json:"total_tokens"`
		} `json:"usage"`
		FinishReason string `json:"finish_reason"`
		Text         string `json:"text"`
	} `json:"provenance"`
	ErrorCode string `json:"error_code"`
	Error     string `json:"error"`
	Fallback  struct {
		Note string `json:"note"`
	} `json:"fallback"`
}

func decode(t testing.TB, e event.Event) result {
	t.Helper()
	var r result
	if err := json.Unmarshal(e.Data(), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestSuggestion: the desk's request is answered with the sandbox model's suggestion, assembled
// from its stream, with personal data restored for the agent and the provenance filled in; the
// vendor saw placeholders only, and the one audit record of the call has no raw number.
func TestSuggestion(t *testing.T) {
	t.Parallel()
	tb := setup(t, nil)
	id := tb.request(t,
		turn{"customer", "快递还没到，我的手机 " + mobile + "，身份证 " + idCard},
		turn{"agent", "好的，请稍等"},
		turn{"customer", "退款打到卡 " + bankCard + "，邮箱 alice@example.com"})
	e := tb.answer(t, id)
	if e.Type() != assist.TypeCompleted {
		t.Fatalf("%s: %s", e.Type(), e.Data())
	}
	r := decode(t, e)
	const said = "您好，已收到您的消息「退款打到卡 <BANK_CARD_1>，邮箱 <EMAIL_1>」。我们已记录 <PHONE_1>、<ID_CARD_1>、<BANK_CARD_1>、<EMAIL_1>，会尽快为您处理。"
	restored := strings.NewReplacer("<PHONE_1>", mobile, "<ID_CARD_1>", idCard, "<BANK_CARD_1>", bankCard, "<EMAIL_1>", "alice@example.com").Replace(said)
	if len(r.Suggestions) != 1 || r.Suggestions[0].Text != restored {
		t.Fatalf("suggestion %+v\nwant %s", r.Suggestions, restored)
	}
	p := r.Provenance
	if r.Provider != "bailian" || p.Provider != "bailian" || p.Model != "qwen-plus" || r.Model != "qwen-plus" ||
		p.PromptTemplateID != assist.TemplateID || p.PromptTemplateSHA256 != assist.TemplateSHA256 ||
		len(p.InputEventIDs) != 1 || p.InputEventIDs[0] != id || p.LatencyMS == nil || p.Text != said || p.FinishReason != "stop" ||
		p.Usage == nil || p.Usage.CompletionTokens == 0 || p.Usage.TotalTokens != p.Usage.PromptTokens+p.Usage.CompletionTokens {
		t.Fatalf("provenance %+v", p)
	}

	// What the vendor received: placeholders, no raw phone, ID, bank number or e-mail.
	recs := tb.env.Records(sim.Filter{Vendor: openai.Vendor})
	if len(recs) != 1 {
		t.Fatalf("%d vendor calls", len(recs))
	}
	var sent openai.Request
	if err := json.Unmarshal(recs[0].Data, &sent); err != nil {
		t.Fatal(err)
	}
	if !sent.Stream || sent.Model != "qwen-plus" || len(sent.Messages) != 4 || sent.Messages[0].Role != "system" ||
		sent.Messages[2].Role != "assistant" || !strings.Contains(sent.Messages[1].Content, "<PHONE_1>") {
		t.Fatalf("sent %+v", sent)
	}
	noPII(t, "the vendor's request", string(recs[0].Data))

	var audits []event.Event
	bustest.WaitFor(t, 10*time.Second, "the audit record", func() bool {
		audits = audits[:0]
		for _, a := range tb.bus.Events(t, bus.StreamAudit, assist.SubjectAudit) {
			if !strings.Contains(string(a.Data()), `"op":"check"`) { // the start check's own record
				audits = append(audits, a)
			}
		}
		return len(audits) >= 1
	})
	if len(audits) != 1 || !strings.Contains(string(audits[0].Data()), `"outcome":"ok"`) {
		t.Fatalf("audit records: %d %s", len(audits), audits[0].Data())
	}
	noPII(t, "the audit record", string(audits[0].Data()))
}

func noPII(t testing.TB, what, s string) {
	t.Helper()
	for _, v := range []string{mobile, idCard, bankCard, "alice@example.com", "6222 0212", "138 0013"} {
		if strings.Contains(s, v) {
			t.Fatalf("%s holds %s: %s", what, v, s)
		}
	}
	if fs := pii.Scan(s); len(fs) != 0 {
		t.Fatalf("%s holds personal data %+v: %s", what, fs, s)
	}
}

// TestVendorFaults: a rate limit is waited out (Retry-After) and a cut stream retried, both
// answered with the suggestion; a vendor that keeps failing, or refuses the key, is answered
// with .failed, its reason and the fallback text.
func TestVendorFaults(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		fault     sim.Fault
		env       map[string]string
		completed bool
		code      string
		minCalls  int64
		// minLatency is the least provenance.latency_ms of a completed answer (Retry-After).
		minLatency int64
	}{
		// Waiting out a Retry-After of 1 s needs a first-token timeout longer than that.
		{name: "429 then ok", fault: sim.Fault{ErrorRatio: 1, Code: "429:1"}, env: map[string]string{"ASSIST_FIRST_TOKEN_TIMEOUT": "5s"},
			completed: true, minCalls: 2, minLatency: 1000},
		{name: "truncated then ok", fault: sim.Fault{ErrorRatio: 1, Code: openai.FaultTruncated}, completed: true, minCalls: 2},
		{name: "500 always", fault: sim.Fault{ErrorRatio: 1, Code: "500"}, code: "server_error", minCalls: 3},
		// The key revoked after the start (a wrong key at start stops the start: TestStartCheck).
		{name: "bad key", fault: sim.Fault{ErrorRatio: 1, Code: "401"}, code: "invalid_api_key", minCalls: 1},
		{name: "slow vendor", fault: sim.Fault{Latency: 3 * time.Second}, env: map[string]string{"ASSIST_BUDGET": "1500ms", "ASSIST_FIRST_TOKEN_TIMEOUT": "1500ms"},
			code: "timeout", minCalls: 1},
		{name: "silent vendor", fault: sim.Fault{Latency: 3 * time.Second}, code: "first_token_timeout", minCalls: 1},
		{name: "rate limited for longer than the first token may take", fault: sim.Fault{ErrorRatio: 1, Code: "429:2"},
			code: "first_token_timeout", minCalls: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			tb := setup(t, c.env)
			if c.fault != (sim.Fault{}) {
				if err := tb.env.SetFault(chatKey, c.fault); err != nil {
					t.Fatal(err)
				}
				if c.completed {
					// The fault hits the first call only.
					go func() {
						deadline := time.Now().Add(10 * time.Second)
						for tb.env.Stats()[chatKey].Calls < 1 && time.Now().Before(deadline) {
							time.Sleep(time.Millisecond)
						}
						_ = tb.env.SetFault(chatKey, sim.Fault{})
					}()
				}
			}
			id := tb.request(t, turn{"customer", "在吗"})
			e := tb.answer(t, id)
			r := decode(t, e)
			if calls := tb.env.Stats()[chatKey].Calls; calls < c.minCalls {
				t.Errorf("%d vendor calls, want >= %d", calls, c.minCalls)
			}
			if c.completed {
				if e.Type() != assist.TypeCompleted || !strings.Contains(r.Suggestions[0].Text, "在吗") {
					t.Fatalf("%s %s", e.Type(), e.Data())
				}
				if *r.Provenance.LatencyMS < c.minLatency {
					t.Fatalf("latency %d ms: the vendor's Retry-After (%d ms) was not waited", *r.Provenance.LatencyMS, c.minLatency)
				}
				return
			}
			if e.Type() != assist.TypeFailed || r.ErrorCode != c.code || r.Error == "" || r.Fallback.Note == "" || r.Provider != "bailian" {
				t.Fatalf("%s %s, want failed with code %s", e.Type(), e.Data(), c.code)
			}
		})
	}
}

// TestConfig: a missing key or a bad base stops the start with the variable named.
func TestConfig(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, "ASSIST_API_KEY"},
		{map[string]string{"ASSIST_API_KEY": "k", "ASSIST_API_BASE": "ftp://x"}, "ASSIST_API_BASE"},
		{map[string]string{"ASSIST_API_KEY": "k", "ASSIST_API_BASE": "https://api.openai.com/v1/chat/completions"}, "without /chat/completions"},
		{map[string]string{"ASSIST_API_KEY": "k", "ASSIST_PROVIDER": "Open AI"}, "ASSIST_PROVIDER"},
		{map[string]string{"ASSIST_API_KEY": "k", "ASSIST_RESPONSE_FORMAT": "json_shema"}, "did you mean json_schema?"},
		{map[string]string{"ASSIST_API_KEY": "k", "ASSIST_TRANSCRIPT_MAX_TURNS": "0"}, "ASSIST_TRANSCRIPT_MAX_TURNS"},
	} {
		var cfg assist.Config
		err := loadConfig(&cfg, c.env)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error naming %s", c.env, err, c.want)
		}
	}
}

func loadConfig(cfg *assist.Config, env map[string]string) error {
	return config.Load(cfg, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
}
