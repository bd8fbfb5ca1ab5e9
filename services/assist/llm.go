package assist

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
)

// This file is the connector's seam to the vendor: the llm.chat resilience route and one
// streamed chat completions attempt.

// Codes an attempt reports when a 200 stream is unusable: transient, retried like a 5xx.
const (
	codeTruncated = "truncated"
	codeMalformed = "malformed"
)

// chatSettings are the route's figures: a model takes seconds, not milliseconds, to answer.
// Completions have no side effect at the vendor, so the route is idempotent (retried on 429 —
// after Retry-After —, 5xx, timeouts and cut streams). A completion holds its slot for the
// seconds the model writes, so the bulkhead admits as many as ASSIST_CONCURRENCY's default: with
// 16, the 17th of 100 agents pressing the button at once waited behind whole streams (bench
// suggest: first piece p50 2.8 s, against 0.3 s with 128). Operators override any figure with
// RESILIENCE_LLM_CHAT_* (the vendor's own concurrency quota is the real ceiling).
var chatSettings = resilience.Settings{Timeout: 20 * time.Second, Budget: 30 * time.Second, MaxAttempts: 3,
	Backoff: 500 * time.Millisecond, MaxBackoff: 5 * time.Second, MaxConcurrent: 128, MaxWait: time.Second}

// jobSettings are the llm.jobs route's figures: summaries and extractions run in the background,
// so they may wait for a slot (MaxWait) but take few of them (MaxConcurrent), leaving the vendor's
// quota and the llm.chat bulkhead to the agents' buttons; their own breaker keeps a flood of
// closes from opening the buttons' one. Operators override any figure with RESILIENCE_LLM_JOBS_*.
var jobSettings = resilience.Settings{Timeout: 20 * time.Second, Budget: 30 * time.Second, MaxAttempts: 3,
	Backoff: 500 * time.Millisecond, MaxBackoff: 5 * time.Second, MaxConcurrent: 4, MaxWait: 30 * time.Second}

// jobRoute declares the llm.jobs route: llm.chat's classification, jobSettings.
func jobRoute(cfg Config) resilience.RouteSpec {
	r := chatRoute(cfg)
	r.Op, r.Settings = "jobs", jobSettings
	return r
}

// chatRoute declares the llm.chat route: a non-200 status is classified by StatusClass (429 rate
// limited, 5xx retryable, other 4xx a refusal); a 200 whose stream is cut or garbled is retryable.
func chatRoute(cfg Config) resilience.RouteSpec {
	return resilience.RouteSpec{Vendor: "llm", Op: "chat", Idempotent: true, Settings: chatSettings,
		Classify: func(status int, code string) resilience.Class {
			if status != http.StatusOK {
				return resilience.StatusClass(status)
			}
			if code == codeTruncated || code == codeMalformed {
				return resilience.ClassRetryable
			}
			return resilience.ClassSuccess
		},
		Fallback: func(resilience.Call, error) *resilience.Fallback { return &resilience.Fallback{Note: cfg.Fallback} },
	}
}

// chatRequest is the body of POST {base}/chat/completions.
type chatRequest struct {
	Model         string        `json:"model"`
	Messages      []message     `json:"messages"`
	Stream        bool          `json:"stream"`
	StreamOptions streamOptions `json:"stream_options"`
	MaxTokens     int           `json:"max_tokens,omitempty"`
	Temperature   float64       `json:"temperature"`
	// ResponseFormat asks for JSON (summaries and extractions); nil for suggestions.
	ResponseFormat *responseFormat `json:"response_format,omitempty"`
}

// responseFormat is the OpenAI-compatible response_format: {"type":"json_object"}, or
// {"type":"json_schema","json_schema":{"name","strict","schema"}} (structured outputs).
type responseFormat struct {
	Type       string            `json:"type"`
	JSONSchema *jsonSchemaFormat `json:"json_schema,omitempty"`
}

type jsonSchemaFormat struct {
	Name   string          `json:"name"`
	Strict bool            `json:"strict"`
	Schema json.RawMessage `json:"schema"`
}

// format is the response_format of a job whose answer follows schema.
func (c *Connector) format(name, schema string) *responseFormat {
	if c.cfg.ResponseFormat == FormatJSONSchema {
		return &responseFormat{Type: FormatJSONSchema, JSONSchema: &jsonSchemaFormat{Name: name, Strict: true, Schema: json.RawMessage(schema)}}
	}
	return &responseFormat{Type: FormatJSONObject}
}

// ask makes one chat completion for a background job (a summary, an extraction) through the
// llm.jobs route, within ASSIST_SUMMARY_BUDGET, and returns it with the time it took. Errors:
// the route's (*resilience.Error, the budget's context error) and errEmpty.
func (c *Connector) ask(ctx context.Context, msgs []message, format *responseFormat, call resilience.Call) (Completion, time.Duration, error) {
	body, err := json.Marshal(chatRequest{Model: c.cfg.Model, Messages: msgs, Stream: true, StreamOptions: streamOptions{IncludeUsage: true},
		MaxTokens: c.cfg.MaxTokens, Temperature: 0, ResponseFormat: format})
	if err != nil {
		return Completion{}, 0, err
	}
	budget, cancel := context.WithTimeout(ctx, c.cfg.SummaryBudget)
	defer cancel()
	start := c.now()
	comp, err := resilience.Do(budget, c.jobs, call, func(ctx context.Context, a *resilience.Attempt) (Completion, error) {
		return c.client.complete(ctx, a, body, nil)
	})
	if err == nil && strings.TrimSpace(comp.Text) == "" {
		err = errEmpty
	}
	return comp, c.now().Sub(start), err
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// chatClient makes chat completions attempts.
type chatClient struct {
	http *http.Client
	url  string
	key  string
}

// complete is one attempt: it sends body (audited as it is — the prompt holds placeholders, not
// personal data, and the key is in a header), reads the event stream — calling onDelta, if not
// nil, with each piece of content as it arrives — and reports the answer on a. Errors: *VendorError for an error answer, ErrTruncated or ErrMalformed for an unusable
// stream, transport errors, and bus.Permanent for a request that cannot be built.
func (c *chatClient) complete(ctx context.Context, a *resilience.Attempt, body []byte, onDelta func(string)) (Completion, error) {
	a.Request(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return Completion{}, bus.Permanent(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+c.key)
	resp, err := c.http.Do(req)
	if err != nil {
		return Completion{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		ve := parseError(resp.StatusCode, raw)
		code := ""
		if ve != nil {
			code = ve.Code
		} else {
			ve = &VendorError{Status: resp.StatusCode, Message: strings.TrimSpace(string(raw[:min(len(raw), 200)]))}
		}
		a.Response(resp.StatusCode, code, raw)
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			if d, ok := resilience.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
				a.RetryAfter(d)
			}
		}
		return Completion{}, ve
	}
	comp, err := ReadStream(io.LimitReader(resp.Body, resilience.MaxResponseBody), onDelta)
	// The audit record gets what was assembled, not the raw chunks.
	summary, _ := json.Marshal(map[string]any{"model": comp.Model, "text": comp.Text, "finish_reason": comp.FinishReason, "usage": comp.Usage})
	var ve *VendorError
	switch {
	case err == nil:
		a.Response(resp.StatusCode, "", summary)
		return comp, nil
	case errors.As(err, &ve):
		a.Response(resp.StatusCode, codeMalformed, summary)
		return comp, err
	case errors.Is(err, ErrTruncated):
		a.Response(resp.StatusCode, codeTruncated, summary)
		return comp, err
	case errors.Is(err, ErrMalformed):
		a.Response(resp.StatusCode, codeMalformed, summary)
		return comp, err
	}
	// Reading the body failed (the connection dropped, the attempt timed out): transient.
	return comp, fmt.Errorf("read chat stream: %w", err)
}
