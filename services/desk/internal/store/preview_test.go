package store

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

func TestPreview(t *testing.T) {
	t.Parallel()
	long := make([]rune, 300)
	for i := range long {
		long[i] = '快'
	}
	for body, want := range map[string]string{
		`{"type":"text","text":"  你好\n  在吗 "}`:                  "你好 在吗",
		`{"type":"image","media_id":"m1"}`:                      "[image]",
		`{"type":"file","media_id":"m1","file_name":"发票.pdf"}`:  "[file] 发票.pdf",
		`{"type":"link","link":{"url":"https://example.cn/a"}}`: "[link] https://example.cn/a",
		`{"type":"event","event":{"name":"enter_session"}}`:     "[event] enter_session",
		`{"type":"text","text":"` + string(long) + `"}`:         string(long[:139]) + "…",
		`not json`: "",
	} {
		if got := Preview(json.RawMessage(body)); got != want {
			t.Errorf("Preview(%.40s) = %q, want %q", body, got, want)
		}
	}
}

func TestSentiment(t *testing.T) {
	t.Parallel()
	if l, s := Sentiment(json.RawMessage(`{"sentiment":{"label":"negative","score":-0.5}}`)); l != "negative" || s != -0.5 {
		t.Errorf("got %q %v", l, s)
	}
	for _, body := range []string{`{}`, `{"sentiment":null}`, `[]`, ``} {
		if l, _ := Sentiment(json.RawMessage(body)); l != "" {
			t.Errorf("Sentiment(%s) = %q", body, l)
		}
	}
}

// FuzzPreview: message bodies come from vendors through the connectors; rendering one never
// panics and stays a short, valid line.
func FuzzPreview(f *testing.F) {
	for _, s := range []string{`{"type":"text","text":"你好"}`, `{"type":"link","link":{"title":"t","url":"https://a.cn"}}`,
		`{"type":"event","event":{"name":"x"}}`, `{"type":"image"}`, `{"sentiment":{"label":"negative"}}`, `null`, "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p := Preview(json.RawMessage(s))
		if utf8.RuneCountInString(p) > 160 || !utf8.ValidString(p) && utf8.ValidString(s) {
			t.Fatalf("Preview(%q) = %q", s, p)
		}
		_, _ = Sentiment(json.RawMessage(s))
	})
}
