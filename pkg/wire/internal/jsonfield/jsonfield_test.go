package jsonfield

import (
	"encoding/json"
	"testing"
)

func TestUnwrap(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, raw, want string
		ok              bool
	}{
		{"object", `{"a":1}`, `{"a":1}`, true},
		{"encoded string", `"{\"a\":1}"`, `{"a":1}`, true},
		{"padded", "  {\"a\":1}\n", `{"a":1}`, true},
		{"null", `null`, "", false},
		{"absent", ``, "", false},
		{"string not JSON", `"{oops"`, "", false},
		{"not JSON", `{oops`, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Unwrap(json.RawMessage(tc.raw))
			if (err == nil) != tc.ok || string(got) != tc.want {
				t.Errorf("Unwrap(%s) = %s, %v", tc.raw, got, err)
			}
		})
	}
}
