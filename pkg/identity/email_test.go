package identity

import (
	"errors"
	"strings"
	"testing"
)

type emailCase struct {
	name   string
	raw    string
	want   string
	errHas string
}

// emailCases is shared with the idempotency test and seeds FuzzNormalizeEmail.
var emailCases = []emailCase{
	{name: "plain", raw: "jane@example.com", want: "jane@example.com"},
	{name: "mixed case", raw: "Jane.Doe@Example.COM", want: "jane.doe@example.com"},
	{name: "spaces around", raw: "  jane@example.com \t\n", want: "jane@example.com"},
	{name: "ideographic space around", raw: "\u3000jane@example.com\u3000", want: "jane@example.com"},
	{name: "plus tag kept", raw: "Jane+Orders@Example.com", want: "jane+orders@example.com"},
	{name: "subdomain", raw: "li.wei@mail.corp.example.cn", want: "li.wei@mail.corp.example.cn"},
	{name: "digits local qq", raw: "12345678@QQ.com", want: "12345678@qq.com"},
	{name: "idn domain kept as typed", raw: "Wang@例子.公司", want: "wang@例子.公司"},
	{name: "idn upper-case lowered", raw: "ÉLISE@CAFÉ.FR", want: "élise@café.fr"},
	{name: "hyphen inside label", raw: "a@my-shop.example", want: "a@my-shop.example"},
	{name: "max local part", raw: strings.Repeat("a", 64) + "@example.com", want: strings.Repeat("a", 64) + "@example.com"},
	{name: "max length", raw: "a@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 63) + "." + strings.Repeat("e", 56) + ".com", want: "a@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 63) + "." + strings.Repeat("e", 56) + ".com"},

	{name: "empty", raw: "", errHas: "empty"},
	{name: "blank", raw: " \t ", errHas: "empty"},
	{name: "no at", raw: "jane.example.com", errHas: `no "@"`},
	{name: "two ats", raw: "jane@doe@example.com", errHas: `more than one "@"`},
	{name: "empty local", raw: "@example.com", errHas: "empty local part"},
	{name: "empty domain", raw: "jane@", errHas: "empty domain"},
	{name: "domain without dot", raw: "jane@localhost", errHas: "no dot"},
	{name: "inner space", raw: "jane doe@example.com", errHas: "white space"},
	{name: "space before at", raw: "jane @example.com", errHas: "white space"},
	{name: "display name form", raw: "Jane <jane@example.com>", errHas: "white space"},
	{name: "angle brackets", raw: "<jane@example.com>", errHas: "quoting"},
	{name: "quoted local", raw: `"jane"@example.com`, errHas: "quoting"},
	{name: "comma list", raw: "a@example.com,b@example.com", errHas: "quoting"},
	{name: "address literal", raw: "jane@[192.0.2.1]", errHas: "quoting"},
	{name: "control character", raw: "jane\x00@example.com", errHas: "control"},
	{name: "zero-width space", raw: "jane\u200b@example.com", errHas: "invisible"},
	{name: "invalid utf-8", raw: "jane\xff@example.com", errHas: "UTF-8"},
	{name: "leading dot local", raw: ".jane@example.com", errHas: "dot"},
	{name: "trailing dot local", raw: "jane.@example.com", errHas: "dot"},
	{name: "double dot local", raw: "ja..ne@example.com", errHas: "two dots"},
	{name: "trailing dot domain", raw: "jane@example.com.", errHas: "empty label"},
	{name: "leading dot domain", raw: "jane@.example.com", errHas: "empty label"},
	{name: "double dot domain", raw: "jane@example..com", errHas: "empty label"},
	{name: "label leading hyphen", raw: "jane@-example.com", errHas: `starts or ends with "-"`},
	{name: "label trailing hyphen", raw: "jane@example-.com", errHas: `starts or ends with "-"`},
	{name: "label too long", raw: "jane@" + strings.Repeat("a", 64) + ".com", errHas: "label longer than 63"},
	{name: "local too long", raw: strings.Repeat("a", 65) + "@example.com", errHas: "local part longer than 64"},
	{name: "too long", raw: "a@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 63) + "." + strings.Repeat("e", 57) + ".com", errHas: "longer than 254"},
}

func TestNormalizeEmail(t *testing.T) {
	t.Parallel()
	for _, tc := range emailCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := NormalizeEmail(tc.raw)
			if tc.errHas != "" {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("NormalizeEmail(%q) = %q, %v; want an error wrapping ErrInvalid", tc.raw, got, err)
				}
				if !strings.Contains(err.Error(), tc.errHas) {
					t.Errorf("error %q does not mention %q", err, tc.errHas)
				}
				return
			}
			if err != nil {
				t.Fatalf("NormalizeEmail(%q): %v", tc.raw, err)
			}
			if got != tc.want {
				t.Errorf("NormalizeEmail(%q) = %q; want %q", tc.raw, got, tc.want)
			}
		})
	}
}
