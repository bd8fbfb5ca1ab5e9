package assist

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// This file reads an OpenAI-compatible chat completions stream (vendors/README.md §13): server-
// sent events whose data is a chat.completion.chunk, ending with the line "data: [DONE]".

// Errors of ReadStream. A stream that fails with either is transient: the vendor (or a proxy)
// cut or garbled it, and the call is retried.
var (
	// ErrTruncated: the stream ended before "data: [DONE]".
	ErrTruncated = errors.New("chat stream ended before [DONE]")
	// ErrMalformed: an event's data is not a chat.completion.chunk, or a line exceeds MaxLine.
	ErrMalformed = errors.New("malformed chat stream")
)

// MaxLine bounds one line of the stream.
const MaxLine = 1 << 20

// Usage is the vendor's token count of a call.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// Completion is what a stream assembled.
type Completion struct {
	// Text is the concatenated content of the deltas.
	Text string
	// Model is the model the vendor named in its chunks ("" if none).
	Model string
	// FinishReason is the last finish_reason given (stop, length, ...).
	FinishReason string
	// Usage is the usage chunk's counts, when the vendor sent one.
	Usage *Usage
	// Done reports that "data: [DONE]" was read.
	Done bool
}

// chunk is one chat.completion.chunk (or an error object some vendors send mid-stream).
type chunk struct {
	Model   string `json:"model"`
	Choices []struct {
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *Usage    `json:"usage"`
	Error *apiError `json:"error"`
}

// apiError is the vendors' error object, {"error":{"message","type","code"}}.
type apiError struct {
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Code    json.RawMessage `json:"code"`
}

// code is the error's code, else its type.
func (e *apiError) code() string {
	var s string
	if json.Unmarshal(e.Code, &s) == nil && s != "" {
		return s
	}
	if n := strings.TrimSpace(string(e.Code)); n != "" && n != "null" {
		return n
	}
	return e.Type
}

// ReadStream reads a chat completions event stream from r until "data: [DONE]", calling
// onDelta (if not nil) with each piece of content as it arrives, and returns what it assembled.
// It follows the event-stream format as the vendors use it: lines end with LF or CRLF, a blank
// line ends an event, lines starting with ":" are comments, "data:" takes an optional space, the
// data lines of one event are joined with LF, and other fields (event, id, retry) are ignored.
// Errors: ErrTruncated when r ends first (with what was assembled), ErrMalformed for data that is
// not a chunk, a *VendorError for an error object in the stream, or r's own error.
func ReadStream(r io.Reader, onDelta func(string)) (Completion, error) {
	var c Completion
	var text strings.Builder
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), MaxLine)
	var data []byte
	hasData := false
	dispatch := func() error {
		if !hasData {
			return nil
		}
		d := data
		data, hasData = data[:0], false
		if string(d) == "[DONE]" {
			c.Done = true
			return nil
		}
		var ch chunk
		if err := json.Unmarshal(d, &ch); err != nil {
			return fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		if ch.Error != nil {
			return &VendorError{Code: ch.Error.code(), Message: ch.Error.Message}
		}
		if ch.Model != "" {
			c.Model = ch.Model
		}
		for _, choice := range ch.Choices {
			if s := choice.Delta.Content; s != "" {
				text.WriteString(s)
				if onDelta != nil {
					onDelta(s)
				}
			}
			if choice.FinishReason != nil && *choice.FinishReason != "" {
				c.FinishReason = *choice.FinishReason
			}
		}
		if ch.Usage != nil {
			u := *ch.Usage
			c.Usage = &u
		}
		return nil
	}
	for !c.Done && sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			if err := dispatch(); err != nil {
				c.Text = text.String()
				return c, err
			}
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, found := bytes.Cut(line, []byte(":"))
		if string(field) != "data" {
			continue
		}
		if found && len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
		if hasData {
			data = append(data, '\n')
		}
		data = append(data, value...)
		hasData = true
		// "data: [DONE]" is the last line: vendors do not always send the blank line after it.
		if string(data) == "[DONE]" {
			c.Done = true
		}
	}
	c.Text = text.String()
	if c.Done {
		return c, nil
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return c, fmt.Errorf("%w: a line exceeds %d bytes", ErrMalformed, MaxLine)
		}
		return c, err
	}
	// An event not ended by a blank line is not dispatched (the stream was cut inside it).
	return c, ErrTruncated
}

// VendorError is an error object the vendor answered with (an HTTP error body, or an error event
// in the stream).
type VendorError struct {
	Status  int // the HTTP status, 0 within a stream
	Code    string
	Message string
}

func (e *VendorError) Error() string {
	s := "vendor error"
	if e.Status != 0 {
		s += fmt.Sprintf(" (HTTP %d)", e.Status)
	}
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// parseError reads an error answer's body; nil when it is not the vendors' error object.
func parseError(status int, body []byte) *VendorError {
	var b struct {
		Error *apiError `json:"error"`
	}
	if json.Unmarshal(body, &b) != nil || b.Error == nil {
		return nil
	}
	return &VendorError{Status: status, Code: b.Error.code(), Message: b.Error.Message}
}
