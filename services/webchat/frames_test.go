package webchat_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/omnibus-dev/omnibus/services/webchat"
)

func TestParseClientFrame(t *testing.T) {
	t.Parallel()
	tok := webchat.VisitorToken(secret, "v_0123456789abcdef")
	tests := []struct {
		name, in string
		wantErr  string // "" = valid
	}{
		{"hello new visitor", `{"type":"hello"}`, ""},
		{"hello returning", `{"type":"hello","visitor":"v_0123456789abcdef","token":"` + tok + `","since":42}`, ""},
		{"hello with identity", `{"type":"hello","identity":{"kind":"member_id","value":"M1","ts":1764230400,"sig":"ab"}}`, ""},
		{"message", `{"type":"message","cid":"c_1-A","text":"你好"}`, ""},
		{"message with phone", `{"type":"message","cid":"c1","text":"hi","phone":"13800138000"}`, ""},
		{"contact", `{"type":"contact","cid":"c1","email":"a@b.cn"}`, ""},
		{"receipt", `{"type":"receipt","seq":7,"status":"read"}`, ""},
		{"missing type", `{"cid":"c1"}`, "type is missing"},
		{"unknown type", `{"type":"typing"}`, "unknown type"},
		{"unknown field", `{"type":"message","cid":"c1","text":"hi","html":"<b>"}`, "unknown field"},
		{"trailing data", `{"type":"hello"} {}`, "data after"},
		{"not an object", `["hello"]`, "not a JSON frame"},
		{"wrong field type", `{"type":"receipt","seq":"7","status":"read"}`, `field "seq"`},
		{"visitor without token", `{"type":"hello","visitor":"v_0123456789abcdef"}`, "both visitor and token"},
		{"malformed visitor", `{"type":"hello","visitor":"admin","token":"x"}`, "visitor must look like"},
		{"hello with text", `{"type":"hello","text":"hi"}`, "hello carries only"},
		{"cid missing", `{"type":"message","text":"hi"}`, "cid must be"},
		{"cid with a dot", `{"type":"message","cid":"a.b","text":"hi"}`, "cid must be"},
		{"cid too long", `{"type":"message","cid":"` + strings.Repeat("c", 65) + `","text":"hi"}`, "cid must be"},
		{"empty text", `{"type":"message","cid":"c1","text":" \n "}`, "empty"},
		{"text too long", `{"type":"message","cid":"c1","text":"` + strings.Repeat("长", 101) + `"}`, "limit is 100"},
		{"control character", `{"type":"message","cid":"c1","text":"a\u0000b"}`, "control characters"},
		{"contact without values", `{"type":"contact","cid":"c1"}`, "needs a phone or an email"},
		{"contact with text", `{"type":"contact","cid":"c1","phone":"1","text":"x"}`, "no text"},
		{"message with seq", `{"type":"message","cid":"c1","text":"x","seq":3}`, "carries only"},
		{"receipt without seq", `{"type":"receipt","status":"read"}`, "seq > 0"},
		{"receipt bad status", `{"type":"receipt","seq":1,"status":"seen"}`, "delivered or read"},
		{"phone too long", `{"type":"contact","cid":"c1","phone":"` + strings.Repeat("1", 33) + `"}`, "phone longer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := webchat.ParseClientFrame([]byte(tt.in), 100)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseClientFrame(%s) = %v", tt.in, err)
				}
				return
			}
			if !errors.Is(err, webchat.ErrFrame) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseClientFrame(%s) = %v, want ErrFrame containing %q", tt.in, err, tt.wantErr)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"13800138000":        "+8613800138000",
		"+86 138 0013 8000":  "+8613800138000",
		"0086 138-0013-8000": "+8613800138000",
		"(010) 6552 9988":    "+861065529988", // a Beijing landline
		"+852 5123 4567":     "+85251234567",
		"1380013800":         "",
		"+86 138 0013 80001": "",
		"phone":              "",
		"":                   "",
	} {
		got, err := webchat.NormalizePhone(in, "CN")
		if (err != nil) != (want == "") || got != want {
			t.Errorf("NormalizePhone(%q) = %q, %v; want %q", in, got, err, want)
		}
		if err != nil && !errors.Is(err, webchat.ErrContact) {
			t.Errorf("NormalizePhone(%q) error %v does not wrap ErrContact", in, err)
		}
	}
	for in, want := range map[string]string{
		"Wang.Fang@Example.COM": "wang.fang@example.com",
		" li@example.cn ":       "li@example.cn",
		"Li <li@example.cn>":    "",
		"li@localhost":          "",
		"li@@example.cn":        "",
		"li@example..cn":        "",
		"@example.cn":           "",
		"li@[127.0.0.1]":        "",
	} {
		got, err := webchat.NormalizeEmail(in)
		if (err != nil) != (want == "") || got != want {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestVisitorTokens(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		v := webchat.NewVisitorID()
		if !webchat.ValidVisitorID(v) || seen[v] {
			t.Fatalf("NewVisitorID() = %q (valid %v, repeated %v)", v, webchat.ValidVisitorID(v), seen[v])
		}
		seen[v] = true
	}
	v := "v_0123456789abcdef"
	// The documented scheme, computed independently: hex(HMAC-SHA256(secret, "omnibus-webchat-visitor\n" + id)).
	if got, want := webchat.VisitorToken(secret, v), hmacHex(secret, "omnibus-webchat-visitor\n"+v); got != want {
		t.Fatalf("VisitorToken = %s, want %s", got, want)
	}
	if err := webchat.CheckVisitor(secret, v, webchat.VisitorToken(secret, v)); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct{ v, tok string }{
		{v, webchat.VisitorToken("other-secret", v)},
		{v, strings.ToUpper(webchat.VisitorToken(secret, v))},
		{"v_0123456789ABCDEF", webchat.VisitorToken(secret, "v_0123456789ABCDEF")},
		{"v_0123", webchat.VisitorToken(secret, "v_0123")},
		{v, ""},
	} {
		if err := webchat.CheckVisitor(secret, bad.v, bad.tok); !errors.Is(err, webchat.ErrToken) {
			t.Errorf("CheckVisitor(%q, %q) = %v, want ErrToken", bad.v, bad.tok, err)
		}
	}
}

// FuzzParseClientFrame feeds the frame parser arbitrary bytes: it must never panic, and what it
// accepts must satisfy the frame's invariants and survive a round trip unchanged.
func FuzzParseClientFrame(f *testing.F) {
	tok := webchat.VisitorToken(secret, "v_0123456789abcdef")
	for _, s := range []string{
		`{"type":"hello"}`,
		`{"type":"hello","visitor":"v_0123456789abcdef","token":"` + tok + `","since":18446744073709551615}`,
		`{"type":"hello","identity":{"kind":"member_id","value":"M-10086","ts":1764230400,"sig":"00ff"}}`,
		`{"type":"message","cid":"c_3f9a1b2c4d5e6f708192a3b4","text":"你好，我的快递到哪了？运单号 SF1234567890123"}`,
		`{"type":"message","cid":"c1","text":"hi","phone":"138 0013 8000","email":"a@b.cn"}`,
		`{"type":"message","cid":"c1","text":"/phone 13800138000"}`,
		`{"type":"contact","cid":"c2","phone":"+86 139-0013-9000"}`,
		`{"type":"receipt","seq":12,"status":"delivered"}`,
		`{"type":"message","cid":"c1","text":"a\u0000b"}`,
		`{"type":"message","cid":"c1","text":"\ud800"}`,
		`{"type":"message","cid":"c1","text":"x"}{"type":"hello"}`,
		`{"type":"receipt","seq":-1,"status":"read"}`,
		"\xff\xfe",
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := webchat.ParseClientFrame(b, 4000)
		if err != nil {
			if !errors.Is(err, webchat.ErrFrame) {
				t.Fatalf("error %v does not wrap ErrFrame", err)
			}
			return
		}
		switch fr.Type {
		case webchat.FrameMessage:
			if fr.CID == "" || strings.TrimSpace(fr.Text) == "" || !utf8.ValidString(fr.Text) || utf8.RuneCountInString(fr.Text) > 4000 {
				t.Fatalf("accepted a bad message %+v", fr)
			}
		case webchat.FrameContact:
			if fr.CID == "" || (fr.Phone == "" && fr.Email == "") {
				t.Fatalf("accepted a bad contact %+v", fr)
			}
		case webchat.FrameReceipt:
			if fr.Seq == 0 || (fr.Status != "delivered" && fr.Status != "read") {
				t.Fatalf("accepted a bad receipt %+v", fr)
			}
		case webchat.FrameHello:
			if fr.Visitor != "" && !webchat.ValidVisitorID(fr.Visitor) {
				t.Fatalf("accepted a bad visitor %q", fr.Visitor)
			}
		default:
			t.Fatalf("accepted type %q", fr.Type)
		}
		again, _ := json.Marshal(fr)
		fr2, err := webchat.ParseClientFrame(again, 4000)
		if err != nil {
			t.Fatalf("re-parsing the accepted frame %s: %v", again, err)
		}
		if b2, _ := json.Marshal(fr2); string(b2) != string(again) {
			t.Fatalf("round trip changed %s into %s", again, b2)
		}
	})
}

// The widget is plain JavaScript served as is: check that it parses (with node, when present).
func TestWidgetScriptParses(t *testing.T) {
	t.Parallel()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed: cannot syntax-check widget.js")
	}
	src, err := os.ReadFile(filepath.Join("assets", "widget.js"))
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(t.TempDir(), "widget.js")
	if err := os.WriteFile(tmp, src, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(node, "--check", tmp).CombinedOutput(); err != nil {
		t.Fatalf("widget.js does not parse: %v\n%s", err, out)
	}
}

func TestHostIdentitySignature(t *testing.T) {
	t.Parallel()
	// The scheme the README documents for host backends, recomputed here as a host would.
	ts := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC).Unix()
	if got, want := webchat.SignHostIdentity("s3cret", "member_id", "M-10086", ts), hmacHex("s3cret", "member_id\nM-10086\n1795766400"); got != want {
		t.Fatalf("SignHostIdentity = %s, want %s", got, want)
	}
}

func hmacHex(key, msg string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

// FuzzNormalizeContact: what visitors type as a phone or email. Accepted values are canonical
// (E.164; a lower-case address) and normalising them again changes nothing.
func FuzzNormalizeContact(f *testing.F) {
	for _, s := range []string{"13800138000", "+86 138 0013 8000", "0086-139-0013-9000", "(010) 6552 9988",
		"+1 650-253-0000", "Wang.Fang@Example.COM", "li@[127.0.0.1]", "a@b", "+", "00", "１３８００１３８０００", "tel:+8613800138000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if p, err := webchat.NormalizePhone(s, "CN"); err == nil {
			if len(p) < 8 || p[0] != '+' || strings.Trim(p[1:], "0123456789") != "" {
				t.Fatalf("NormalizePhone(%q) = %q, not E.164", s, p)
			}
			if again, err := webchat.NormalizePhone(p, "CN"); err != nil || again != p {
				t.Fatalf("NormalizePhone(%q) = %q, %v; want it unchanged", p, again, err)
			}
		} else if !errors.Is(err, webchat.ErrContact) {
			t.Fatalf("NormalizePhone(%q) error %v does not wrap ErrContact", s, err)
		}
		if e, err := webchat.NormalizeEmail(s); err == nil {
			if e != strings.ToLower(e) || !strings.Contains(e, "@") {
				t.Fatalf("NormalizeEmail(%q) = %q", s, e)
			}
			if again, err := webchat.NormalizeEmail(e); err != nil || again != e {
				t.Fatalf("NormalizeEmail(%q) = %q, %v; want it unchanged", e, again, err)
			}
		}
	})
}
