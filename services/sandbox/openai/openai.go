// Package openai simulates an OpenAI-compatible chat completions API (OpenAI, Aliyun Bailian's
// DashScope compatible mode; vendors/README.md §13), mounted on a sim.Env under /sandbox/openai:
//
//	POST /sandbox/openai/v1/chat/completions   op "chat/completions"
//	GET  /sandbox/openai/v1/models             op "models"
//
// It checks the bearer key (401 invalid_api_key otherwise) and the body (400
// invalid_request_error without a model or messages), records what it was sent, and answers
// with a deterministic reply built from the prompt (Reply): the last user message it saw, the
// first sentence of the first knowledge-base article in the system message ("[kb:<id>] <title>"
// and the body on the next line, as the assist connector writes them) and the personal-data
// placeholders (<PHONE_1>, ...) in the conversation's messages, so tests can assert what the model was
// shown and that its answer is grounded in the article. With "stream": true the reply comes as server-sent events —
// chat.completion.chunk objects whose first delta is the role, then the content in pieces, then
// an empty delta with finish_reason "stop", a usage chunk when stream_options.include_usage is
// set, and "data: [DONE]" — as the vendors send it; otherwise as one chat.completion object.
// Token counts are deterministic (runes of the prompt, pieces of the reply). A request with
// response_format json_object or json_schema is answered with one JSON object instead
// (JSONReply): a summary, or the order numbers, waybills, amounts and request found in the
// transcript it was given, so tests can assert that a summary or extraction restates the prompt.
//
// Injected faults (sim.Fault.Code): "" is a 500 server_error; "429" or "429:<seconds>" a rate
// limit with Retry-After; any other status (400-599, optionally "http_NNN") that status with the
// vendor's error body; "truncated" a 200 stream that stops mid-chunk, before [DONE].
package openai

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

// Vendor is the simulator's name under /sandbox/.
const Vendor = "openai"

// OpChat is the op of chat completions (fault key "openai chat/completions").
const OpChat = "chat/completions"

// OpModels is the op of the model list (fault key "openai models"): GET /v1/models, what the
// connector asks at start to check its key.
const OpModels = "models"

// Models are the models the simulated account lists (Bailian's names and OpenAI's).
var Models = []string{"qwen-plus", "qwen-turbo", "qwen-max", "gpt-4o-mini", "gpt-4.1"}

// FaultTruncated is the fault code of a stream cut short.
const FaultTruncated = "truncated"

// Config configures the simulated account.
type Config struct {
	// APIKey is the bearer key the connector must send (its ASSIST_API_KEY). Required.
	APIKey string
	// ChunkDelay is the pause before each content chunk of a stream, as a model takes time to
	// write (0: none). Callers see the reply arrive progressively.
	ChunkDelay time.Duration
}

// Sim is the running simulator.
type Sim struct {
	env *sim.Env
	cfg Config
}

// New mounts the simulator on env.
func New(env *sim.Env, cfg Config) (*Sim, error) {
	if cfg.APIKey == "" {
		return nil, errors.New("openai sandbox: APIKey is required")
	}
	s := &Sim{env: env, cfg: cfg}
	env.Handle(sim.Route{Vendor: Vendor, Op: OpChat, Pattern: "POST /v1/chat/completions",
		Handler: sim.RequireAuthorization("Bearer "+cfg.APIKey, s.serve, func(w http.ResponseWriter, _ *http.Request) {
			writeError(w, http.StatusUnauthorized, "", "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
		}),
		Fail: s.fail})
	env.Handle(sim.Route{Vendor: Vendor, Op: OpModels, Pattern: "GET /v1/models",
		Handler: sim.RequireAuthorization("Bearer "+cfg.APIKey, s.models, func(w http.ResponseWriter, _ *http.Request) {
			writeError(w, http.StatusUnauthorized, "", "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
		}),
		Fail: s.fail})
	return s, nil
}

// models answers GET /v1/models as OpenAI does: {"object":"list","data":[{"id","object":"model",...}]}.
func (s *Sim) models(w http.ResponseWriter, _ *http.Request) {
	data := make([]map[string]any, 0, len(Models))
	for _, m := range Models {
		data = append(data, map[string]any{"id": m, "object": "model", "created": 1700000000, "owned_by": "system"})
	}
	sim.WriteJSON(w, http.StatusOK, "application/json", map[string]any{"object": "list", "data": data})
}

// Message is one chat message.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Request is the body of a chat completions call, as far as the simulator reads it.
type Request struct {
	Model         string    `json:"model"`
	Messages      []Message `json:"messages"`
	Stream        bool      `json:"stream,omitempty"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options,omitempty"`
	Temperature *float64 `json:"temperature,omitempty"`
	MaxTokens   int      `json:"max_tokens,omitempty"`
	// ResponseFormat asks for a JSON answer (JSONReply).
	ResponseFormat *ResponseFormat `json:"response_format,omitempty"`
}

// ResponseFormat is the request's response_format: {"type":"json_object"} or
// {"type":"json_schema","json_schema":{"name","strict","schema"}}; "text" is a plain answer.
type ResponseFormat struct {
	Type       string `json:"type"`
	JSONSchema *struct {
		Name   string          `json:"name"`
		Strict bool            `json:"strict,omitempty"`
		Schema json.RawMessage `json:"schema"`
	} `json:"json_schema,omitempty"`
}

// Usage is the vendor's token count.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

var placeholderRE = regexp.MustCompile(`<(?:PHONE|ID_CARD|BANK_CARD|EMAIL)_[0-9]+>`)

// articleRE finds a knowledge-base article in a system message, as the assist connector writes
// them: a line "[kb:<id>] <title>", then the body.
var articleRE = regexp.MustCompile(`(?m)^\[kb:([^\]\s]+)\] (.+)\n(.+)$`)

// Grounding returns the first knowledge-base article of the system messages (id, title and the
// first sentence of its body); ok is false when there is none.
func Grounding(messages []Message) (id, title, sentence string, ok bool) {
	for _, m := range messages {
		if m.Role != "system" {
			continue
		}
		if g := articleRE.FindStringSubmatch(m.Content); g != nil {
			body := []rune(strings.TrimSpace(g[3]))
			end := len(body)
			for i, r := range body {
				if r == '。' || r == '！' || r == '；' || (r == '.' && (i+1 == len(body) || body[i+1] == ' ')) {
					end = i + 1
					break
				}
			}
			return g[1], strings.TrimSpace(g[2]), string(body[:min(end, 160)]), true
		}
	}
	return "", "", "", false
}

// Reply is the simulator's answer to messages: the last user message, the first sentence of the
// first knowledge-base article it was given (Grounding), and the placeholders seen (each once, in
// order of appearance) in a fixed template.
func Reply(messages []Message) string {
	last := ""
	var seen []string
	for _, m := range messages {
		if m.Role == "user" {
			last = m.Content
		}
		if m.Role == "system" {
			continue // the instructions name the placeholders as examples
		}
		for _, p := range placeholderRE.FindAllString(m.Content, -1) {
			if !contains(seen, p) {
				seen = append(seen, p)
			}
		}
	}
	if r := []rune(last); len(r) > 80 {
		last = string(r[:80]) + "…"
	}
	out := "您好，已收到您的消息「" + last + "」。"
	if _, title, sentence, ok := Grounding(messages); ok {
		out += "根据《" + title + "》：" + sentence
	}
	if len(seen) > 0 {
		out += "我们已记录 " + strings.Join(seen, "、") + "，会尽快为您处理。"
	} else {
		out += "我们会尽快为您处理。"
	}
	return out
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// pieces splits s into chunks of up to n runes.
func pieces(s string, n int) []string {
	var out []string
	for s != "" {
		i, k := 0, 0
		for i < len(s) && k < n {
			_, size := utf8.DecodeRuneInString(s[i:])
			i += size
			k++
		}
		out = append(out, s[:i])
		s = s[i:]
	}
	return out
}

func (s *Sim) serve(w http.ResponseWriter, r *http.Request) {
	var req Request
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "", "We could not parse the JSON body of your request.", "invalid_request_error", "")
		return
	}
	if req.Model == "" || len(req.Messages) == 0 {
		param := "model"
		if req.Model != "" {
			param = "messages"
		}
		writeError(w, http.StatusBadRequest, param, "you must provide "+param, "invalid_request_error", "")
		return
	}
	s.env.Record(Vendor, OpChat, req.Model, req, nil)
	reply := Reply(req.Messages)
	if rf := req.ResponseFormat; rf != nil && (rf.Type == "json_object" || rf.Type == "json_schema") {
		var err error
		if reply, err = JSONReply(req.Messages, rf); err != nil {
			writeError(w, http.StatusBadRequest, "response_format", err.Error(), "invalid_request_error", "")
			return
		}
	}
	chunks := pieces(reply, 8)
	prompt := 0
	for _, m := range req.Messages {
		prompt += utf8.RuneCountInString(m.Content)
	}
	usage := Usage{PromptTokens: prompt, CompletionTokens: len(chunks), TotalTokens: prompt + len(chunks)}
	id := fmt.Sprintf("chatcmpl-sandbox%d", s.env.Stats()[Vendor+" "+OpChat].Calls)
	if !req.Stream {
		sim.WriteJSON(w, http.StatusOK, "application/json", map[string]any{
			"id": id, "object": "chat.completion", "created": 1700000000, "model": req.Model,
			"choices": []map[string]any{{"index": 0, "message": Message{Role: "assistant", Content: reply}, "finish_reason": "stop"}},
			"usage":   usage})
		return
	}
	st := startStream(w)
	chunk := func(delta map[string]string, finish any) map[string]any {
		return map[string]any{"id": id, "object": "chat.completion.chunk", "created": 1700000000, "model": req.Model,
			"choices": []map[string]any{{"index": 0, "delta": delta, "finish_reason": finish}}}
	}
	st.event(chunk(map[string]string{"role": "assistant", "content": ""}, nil))
	for _, c := range chunks {
		if s.cfg.ChunkDelay > 0 {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(s.cfg.ChunkDelay):
			}
		}
		st.event(chunk(map[string]string{"content": c}, nil))
	}
	st.event(chunk(map[string]string{}, "stop"))
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		st.event(map[string]any{"id": id, "object": "chat.completion.chunk", "created": 1700000000, "model": req.Model,
			"choices": []any{}, "usage": usage})
	}
	st.raw("data: [DONE]\n\n")
}

// stream writes server-sent events, flushing each.
type stream struct {
	w http.ResponseWriter
	f http.Flusher
}

func startStream(w http.ResponseWriter) stream {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	f, _ := w.(http.Flusher)
	return stream{w: w, f: f}
}

func (s stream) event(v any) {
	b, _ := json.Marshal(v)
	s.raw("data: " + string(b) + "\n\n")
}

func (s stream) raw(text string) {
	_, _ = s.w.Write([]byte(text))
	if s.f != nil {
		s.f.Flush()
	}
}

func (s *Sim) fail(w http.ResponseWriter, _ *http.Request, code string) {
	if code == FaultTruncated {
		st := startStream(w)
		st.raw(`data: {"id":"chatcmpl-cut","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}` + "\n\n")
		st.raw(`data: {"id":"chatcmpl-cut","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,"delta":{"content":"您好，已`)
		return
	}
	status, retryAfter := sim.FaultStatus(code)
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	typ, errCode := "server_error", ""
	switch status {
	case http.StatusTooManyRequests:
		typ, errCode = "rate_limit_exceeded", "rate_limit_exceeded"
	case http.StatusUnauthorized: // the key revoked: OpenAI's own answer
		writeError(w, status, "", "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
		return
	}
	writeError(w, status, "", "injected fault: "+http.StatusText(status), typ, errCode)
}

func writeError(w http.ResponseWriter, status int, param, msg, typ, code string) {
	e := map[string]any{"message": msg, "type": typ, "param": nil, "code": nil}
	if param != "" {
		e["param"] = param
	}
	if code != "" {
		e["code"] = code
	}
	sim.WriteJSON(w, status, "application/json", map[string]any{"error": e})
}
