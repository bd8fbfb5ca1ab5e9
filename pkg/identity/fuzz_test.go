package identity

import (
	"errors"
	"regexp"
	"testing"
	"unicode/utf8"
)

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{7,14}$`)

// FuzzNormalizePhone checks, for any input and region: no panic; an error wraps ErrInvalid; a
// result is E.164 and normalizes to itself in every region; its mask hides digits.
func FuzzNormalizePhone(f *testing.F) {
	for _, tc := range phoneCases {
		f.Add(tc.raw, tc.region)
	}
	f.Fuzz(func(t *testing.T, raw, region string) {
		got, err := NormalizePhone(raw, region)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("NormalizePhone(%q, %q) error %v does not wrap ErrInvalid", raw, region, err)
			}
			if got != "" {
				t.Fatalf("NormalizePhone(%q, %q) = %q alongside error %v", raw, region, got, err)
			}
			return
		}
		if !e164.MatchString(got) {
			t.Fatalf("NormalizePhone(%q, %q) = %q; not E.164", raw, region, got)
		}
		for _, r := range []string{region, "", "CN", "US", "TW", "ZZ"} {
			again, err := NormalizePhone(got, r)
			if err != nil || again != got {
				t.Fatalf("NormalizePhone(%q, %q) = %q, but again in region %q gives %q, %v", raw, region, got, r, again, err)
			}
		}
		if m := Mask(ID{Phone, got}); m == got || len(m) < len(got) {
			t.Fatalf("Mask(%q) = %q", got, m)
		}
	})
}

// FuzzNormalizeEmail checks: no panic; a result is valid UTF-8, lower-case and idempotent.
func FuzzNormalizeEmail(f *testing.F) {
	for _, tc := range emailCases {
		f.Add(tc.raw)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := NormalizeEmail(raw)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("NormalizeEmail(%q) error %v does not wrap ErrInvalid", raw, err)
			}
			return
		}
		if !utf8.ValidString(got) || len(got) > MaxEmailLen {
			t.Fatalf("NormalizeEmail(%q) = %q", raw, got)
		}
		if again, err := NormalizeEmail(got); err != nil || again != got {
			t.Fatalf("NormalizeEmail(%q) = %q, but again gives %q, %v", raw, got, again, err)
		}
	})
}

// FuzzNormalize checks any kind and value: no panic, errors wrap ErrInvalid, results idempotent.
func FuzzNormalize(f *testing.F) {
	for _, tc := range normalizeCases {
		f.Add(tc.kind, tc.raw)
	}
	f.Fuzz(func(t *testing.T, kind, raw string) {
		var n Normalizer
		got, err := n.Normalize(kind, raw)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Normalize(%q, %q) error %v does not wrap ErrInvalid", kind, raw, err)
			}
			return
		}
		if got.Kind != kind || !ValidKind(got.Kind) {
			t.Fatalf("Normalize(%q, %q) = %#v", kind, raw, got)
		}
		if again, err := n.Normalize(kind, got.Value); err != nil || again != got {
			t.Fatalf("Normalize(%q, %q) = %#v, but again gives %#v, %v", kind, raw, got, again, err)
		}
		_ = Mask(got)
	})
}
