package engine

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/pii"
)

func TestRedactJSONMasksToolResults(t *testing.T) {
	in := `{"query":{"kind":"phone","value":"+8613800138000"},"mobile":13900139000,"n":3,"note":"call 13700137000","ok":true,"ids":["110101199003071234"]}`
	out := redactJSON([]byte(in))
	if !json.Valid(out) {
		t.Fatalf("not JSON: %s", out)
	}
	if pii.Contains(string(out)) {
		t.Fatalf("unmasked number left in %s", out)
	}
	if !strings.Contains(string(out), `"n":3`) || !strings.Contains(string(out), `"ok":true`) {
		t.Fatalf("other values changed: %s", out)
	}
}
