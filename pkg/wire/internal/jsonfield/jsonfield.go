// Package jsonfield reads the JSON fields the short-video platforms deliver either as an object
// or as a JSON-encoded string of one (Douyin's event content, Kuaishou's event data): one
// reading for both wire formats.
package jsonfield

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrEmpty is returned by Unwrap for an absent or null field.
var ErrEmpty = errors.New("absent or null")

// Unwrap returns raw as JSON: the decoded string when raw is a JSON string, raw itself
// otherwise; an error when raw is absent, null, or not (or does not hold) valid JSON.
func Unwrap(raw json.RawMessage) ([]byte, error) {
	d := bytes.TrimSpace(raw)
	if len(d) == 0 || bytes.Equal(d, []byte("null")) {
		return nil, ErrEmpty
	}
	if d[0] == '"' {
		var s string
		if err := json.Unmarshal(d, &s); err != nil {
			return nil, err
		}
		d = []byte(s)
	}
	if !json.Valid(d) {
		return nil, fmt.Errorf("not JSON: %.40q", d)
	}
	return d, nil
}
