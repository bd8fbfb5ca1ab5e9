package assist

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/omnibus-dev/omnibus/pkg/pii"
)

func placeholders(t testing.TB) *pii.Placeholders {
	t.Helper()
	ph := pii.NewPlaceholders()
	ph.Replace("手机 13800138000，卡 6222021234567890128，邮箱 alice@example.com，身份证 11010519491231002X")
	return ph
}

func TestLiveTextHoldsSplitPlaceholders(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		pieces []string
		want   []string // what each push returns, then flush
	}{
		{"whole", []string{"电话 <PHONE_1>，好"}, []string{"电话 13800138000，好", ""}},
		{"split in the kind", []string{"电话 <PHO", "NE_1> 已记录"}, []string{"电话 ", "13800138000 已记录", ""}},
		{"split before the number", []string{"卡 <BANK_CARD_", "1>"}, []string{"卡 ", "6222021234567890128", ""}},
		{"split in the number", []string{"<EMAIL_1", ">"}, []string{"", "alice@example.com", ""}},
		{"a bare angle bracket", []string{"a < b", " c"}, []string{"a < b", " c", ""}},
		{"not a placeholder", []string{"<PHX", "_1>"}, []string{"<PHX", "_1>", ""}},
		{"cut short", []string{"好 <ID_CA"}, []string{"好 ", "<ID_CA"}},
		{"unknown placeholder", []string{"<PHONE_", "9>"}, []string{"", "<PHONE_9>", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := liveText{ph: placeholders(t)}
			var got []string
			for _, p := range tc.pieces {
				got = append(got, l.push(p))
			}
			got = append(got, l.flush())
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// FuzzLiveText: whatever the pieces the model's text arrives in, what liveText lets out adds up
// to the restored text, and no placeholder the mapping issued is ever let out unrestored.
func FuzzLiveText(f *testing.F) {
	f.Add("您好，我们已记录 <PHONE_1>、<BANK_CARD_1>，会尽快处理。", uint64(0x0807060504030201))
	f.Add("<<EMAIL_1>><ID_CARD_1", uint64(3))
	f.Add("a<PHONE_12>b<PHONE_1>", uint64(0xffff))
	f.Fuzz(func(t *testing.T, text string, cuts uint64) {
		if !utf8.ValidString(text) {
			return
		}
		ph := placeholders(t)
		l := liveText{ph: ph}
		var out strings.Builder
		rest := text
		for rest != "" {
			n := int(cuts%7) + 1
			cuts = cuts/7 + 1
			if n > len(rest) {
				n = len(rest)
			}
			piece := rest[:n]
			rest = rest[n:]
			got := l.push(piece)
			for _, issued := range ph.Issued() {
				if strings.Contains(got, issued) {
					t.Fatalf("let out %q unrestored", issued)
				}
			}
			out.WriteString(got)
		}
		out.WriteString(l.flush())
		if want := ph.Restore(text); out.String() != want {
			t.Fatalf("streamed %q, want %q", out.String(), want)
		}
	})
}
