package assist

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/config"
)

// Config is read from the environment. Every field states its default.
type Config struct {
	Provider string `env:"ASSIST_PROVIDER" default:"bailian" desc:"name of the model provider in results and audit records (bailian, openai, ...); any OpenAI-compatible chat completions API works"`
	APIBase  string `env:"ASSIST_API_BASE" default:"https://dashscope.aliyuncs.com/compatible-mode/v1" desc:"base of the OpenAI-compatible API; calls go to <base>/chat/completions (OpenAI: https://api.openai.com/v1, Bailian Singapore: https://dashscope-intl.aliyuncs.com/compatible-mode/v1, omnibus sandbox: http://127.0.0.1:8080/sandbox/openai/v1)"`
	APIKey   string `env:"ASSIST_API_KEY" enable:"true" desc:"API key, sent as Authorization: Bearer (required)"`
	Model    string `env:"ASSIST_MODEL" default:"qwen-plus" desc:"model asked for suggestions"`

	MaxTokens   int     `env:"ASSIST_MAX_TOKENS" default:"512" desc:"max_tokens of a suggestion"`
	Temperature float64 `env:"ASSIST_TEMPERATURE" default:"0.3" desc:"sampling temperature (0-2)"`

	Budget      time.Duration `env:"ASSIST_BUDGET" default:"30s" desc:"time a request may take end to end, retries included; then it is answered with .failed and the fallback text"`
	FirstToken  time.Duration `env:"ASSIST_FIRST_TOKEN_TIMEOUT" default:"800ms" desc:"time the model has to start writing, retries included; a model that is down or silent is answered at once with .failed and the fallback (the note and the request's knowledge-base articles), so the agent's button answers within a second. Raise it for a model slow to start; equal to ASSIST_BUDGET turns the window off"`
	Concurrency int           `env:"ASSIST_CONCURRENCY" default:"128" desc:"suggestion requests handled at once: each is a stream of seconds, so this is how many agents can watch a suggestion being written at the same time (bench suggest: 100 at once)"`
	Fallback    string        `env:"ASSIST_FALLBACK_TEXT" default:"AI 建议暂不可用，请参考知识库手动回复。" desc:"what a .failed result tells the agent to do instead"`

	TranscriptTTL      time.Duration `env:"ASSIST_TRANSCRIPT_TTL" default:"72h" desc:"how long a conversation's transcript (JetStream KV bucket assist_transcripts, built from omni.desk.message.added) is kept after its last message; a conversation closed later than this after its last message is summarised by the rules from what is left"`
	TranscriptMaxTurns int           `env:"ASSIST_TRANSCRIPT_MAX_TURNS" default:"200" desc:"turns a transcript keeps; older turns are dropped first"`
	TranscriptMaxBytes int           `env:"ASSIST_TRANSCRIPT_MAX_BYTES" default:"65536" desc:"bytes of text a transcript keeps (each turn is also cut to 2000 characters); older turns are dropped first"`
	SummaryBudget      time.Duration `env:"ASSIST_SUMMARY_BUDGET" default:"20s" desc:"time the model has for a summary or an extraction, retries included; then the rules fallback answers (source rules)"`
	ResponseFormat     string        `env:"ASSIST_RESPONSE_FORMAT" default:"json_object" desc:"response_format asked of the model for summaries and extractions: json_object (Bailian/DashScope, most OpenAI-compatible APIs; the JSON Schema is in the prompt) or json_schema (OpenAI structured outputs)"`
	AutoTickets        bool          `env:"ASSIST_AUTO_TICKETS" default:"true" desc:"ask the ticket connector for a ticket (omni.tool.ticket.create.requested, routed by business type) when a call ends or a chat closes with an order number, waybill or amount and the customer's request, or a complaint"`
	SettleDeliveries   int           `env:"ASSIST_SETTLE_DELIVERIES" default:"50" desc:"how many times (100 ms apart) a close or a call end waits for the transcript consumer to apply the messages stored before it; then it is handled with the transcript as it is"`
}

// Response formats.
const (
	FormatJSONObject = "json_object"
	FormatJSONSchema = "json_schema"
)

var providerRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// Validate checks the configuration with actionable messages.
func (c *Config) Validate() error {
	var errs []error
	c.Provider = strings.ToLower(strings.TrimSpace(c.Provider))
	if !providerRE.MatchString(c.Provider) {
		errs = append(errs, fmt.Errorf("ASSIST_PROVIDER=%q: want a lower-case name such as bailian or openai", c.Provider))
	}
	if p, err := url.Parse(c.APIBase); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		errs = append(errs, fmt.Errorf("ASSIST_API_BASE=%q: want an http(s) URL", c.APIBase))
	}
	c.APIBase = strings.TrimRight(c.APIBase, "/")
	if strings.HasSuffix(c.APIBase, "/chat/completions") {
		errs = append(errs, fmt.Errorf("ASSIST_API_BASE=%q: give the base, without /chat/completions", c.APIBase))
	}
	if c.APIKey == "" {
		errs = append(errs, errors.New("ASSIST_API_KEY is required (the provider's API key)"))
	}
	if strings.TrimSpace(c.Model) == "" {
		errs = append(errs, errors.New("ASSIST_MODEL must name a model, e.g. qwen-plus"))
	}
	if c.MaxTokens < 1 {
		errs = append(errs, errors.New("ASSIST_MAX_TOKENS must be >= 1"))
	}
	if c.Temperature < 0 || c.Temperature > 2 {
		errs = append(errs, errors.New("ASSIST_TEMPERATURE must be within 0-2"))
	}
	if c.Budget <= 0 {
		errs = append(errs, errors.New("ASSIST_BUDGET must be > 0"))
	}
	if c.FirstToken <= 0 || c.FirstToken > c.Budget {
		errs = append(errs, fmt.Errorf("ASSIST_FIRST_TOKEN_TIMEOUT=%s must be > 0 and at most ASSIST_BUDGET (%s)", c.FirstToken, c.Budget))
	}
	if c.Concurrency < 1 {
		errs = append(errs, errors.New("ASSIST_CONCURRENCY must be >= 1"))
	}
	if c.TranscriptTTL < time.Minute {
		errs = append(errs, fmt.Errorf("ASSIST_TRANSCRIPT_TTL=%s must be at least 1m", c.TranscriptTTL))
	}
	if c.TranscriptMaxTurns < 1 || c.TranscriptMaxTurns > 2000 {
		errs = append(errs, fmt.Errorf("ASSIST_TRANSCRIPT_MAX_TURNS=%d must be within 1-2000", c.TranscriptMaxTurns))
	}
	if c.TranscriptMaxBytes < 1024 || c.TranscriptMaxBytes > 512<<10 {
		errs = append(errs, fmt.Errorf("ASSIST_TRANSCRIPT_MAX_BYTES=%d must be within 1024-524288 (a KV value)", c.TranscriptMaxBytes))
	}
	if c.SummaryBudget <= 0 {
		errs = append(errs, errors.New("ASSIST_SUMMARY_BUDGET must be > 0"))
	}
	if c.ResponseFormat != FormatJSONObject && c.ResponseFormat != FormatJSONSchema {
		errs = append(errs, fmt.Errorf("ASSIST_RESPONSE_FORMAT=%q: want json_object or json_schema%s", c.ResponseFormat,
			config.DidYouMean(c.ResponseFormat, []string{FormatJSONObject, FormatJSONSchema})))
	}
	if c.SettleDeliveries < 1 {
		errs = append(errs, errors.New("ASSIST_SETTLE_DELIVERIES must be >= 1"))
	}
	if strings.TrimSpace(c.Fallback) == "" {
		errs = append(errs, errors.New("ASSIST_FALLBACK_TEXT must not be empty"))
	}
	return errors.Join(errs...)
}
