package voice

import (
	"strings"
	"testing"
)

func TestParseSipfrag(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		body string
		code int
		ok   bool
	}{
		"trying":            {"SIP/2.0 100 Trying\r\n", 100, true},
		"ok with headers":   {"SIP/2.0 200 OK\r\nContact: <sip:8012@pbx>\r\n\r\n", 200, true},
		"busy":              {"SIP/2.0 486 Busy Here", 486, true},
		"no reason phrase":  {"SIP/2.0 603", 603, true},
		"empty":             {"", 0, false},
		"a request line":    {"INVITE sip:8012@pbx SIP/2.0\r\n", 0, false},
		"code out of range": {"SIP/2.0 700 Nope", 0, false},
		"four digits":       {"SIP/2.0 2000 OK", 0, false},
		"not a number":      {"SIP/2.0 2x0 OK", 0, false},
		"other version":     {"SIP/3.0 200 OK", 0, false},
	} {
		f, ok := parseSipfrag([]byte(tc.body))
		if ok != tc.ok || f.code != tc.code {
			t.Errorf("%s: %+v %v, want %d %v", name, f, ok, tc.code, tc.ok)
		}
	}
}

// FuzzParseSipfrag: a NOTIFY body is the trunk's; whatever it holds, a parsed status is a
// valid SIP status and its line is the body's first line, bounded.
func FuzzParseSipfrag(f *testing.F) {
	for _, s := range []string{"SIP/2.0 200 OK\r\n", "SIP/2.0 486 Busy Here", "SIP/2.0 100", "SIP/2.0 99 x", "\n\nSIP/2.0 200 OK"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, ok := parseSipfrag(b)
		if !ok {
			return
		}
		first, _, _ := strings.Cut(string(b), "\n")
		if fr.code < 100 || fr.code > 699 || len(fr.line) > 256 || !strings.HasPrefix(strings.TrimSpace(first), fr.line) {
			t.Fatalf("%q → %+v", b, fr)
		}
	})
}
