package webhook_test

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/webhook"
)

// TestClientReason: what a client is told keeps our words and drops the libraries'.
func TestClientReason(t *testing.T) {
	t.Parallel()
	var v struct {
		N int `json:"n"`
	}
	typeErr := json.Unmarshal([]byte(`{"n":"x"}`), &v)
	synErr := json.Unmarshal([]byte(`{"n":`), &v)
	synErr2 := json.Unmarshal([]byte(`{nope}`), &v)
	xmlErr := xml.Unmarshal([]byte(`<a><b></a>`), &struct{}{})
	_, numErr := strconv.Atoi("12x")
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"ours", fmt.Errorf("%w: msgtype missing", webhook.ErrMalformed), "malformed request: msgtype missing"},
		{"json type", fmt.Errorf("%w: decode: %w", webhook.ErrMalformed, typeErr), `malformed request: decode: field "n" has the wrong type (got a JSON string)`},
		{"json syntax", fmt.Errorf("%w: %w", webhook.ErrMalformed, synErr2), "malformed request: not valid JSON (at byte 2)"},
		{"json eof", fmt.Errorf("body: %w", synErr), "body: not valid JSON (at byte 5)"},
		{"xml", fmt.Errorf("%w: %w", webhook.ErrMalformed, xmlErr), "malformed request: not valid XML (line 1)"},
		{"number", fmt.Errorf("timestamp: %w", numErr), `timestamp: "12x" is not a number`},
		{"pgx", errors.New("store: pgx: failed to connect to `host=/tmp user=postgres`: server error"), "store"},
		{"nats", fmt.Errorf("publish: %w", errors.New("nats: timeout")), "publish"},
		{"only internals", errors.New("runtime error: index out of range [3] with length 2"), "malformed request"},
		{"path", errors.New("recording: open /var/lib/omnibus/voice/x.wav: no such file"), "recording"},
	} {
		got := webhook.ClientReason(tc.err)
		if got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
		for _, bad := range []string{"json:", "pgx", "runtime", "nats:", "/var/", "Go struct", "XML syntax"} {
			if strings.Contains(got, bad) {
				t.Errorf("%s: %q carries %q", tc.name, got, bad)
			}
		}
	}
}
