package identity

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

const (
	maxEmailLocalLen = 64 // RFC 5321 §4.5.3.1.1
	maxDomainLabel   = 63
)

// NormalizeEmail trims raw and lower-cases the whole address, local part included (the
// contact-center practice; see the package documentation for why and for the accepted syntax).
// Errors wrap [ErrInvalid].
func NormalizeEmail(raw string) (string, error) {
	if !utf8.ValidString(raw) {
		return "", emailErr("not valid UTF-8")
	}
	s := strings.ToLower(strings.TrimSpace(raw))
	switch {
	case s == "":
		return "", emailErr("empty")
	case len(s) > MaxEmailLen:
		return "", emailErr(fmt.Sprintf("longer than %d bytes", MaxEmailLen))
	}
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			return "", emailErr("contains white space")
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			return "", emailErr(fmt.Sprintf("contains control or invisible format character %U", r))
		case strings.ContainsRune(`<>()[]\,;:"`, r):
			return "", emailErr(fmt.Sprintf("contains %q, which needs quoting (not supported)", r))
		}
	}
	local, domain, ok := strings.Cut(s, "@")
	switch {
	case !ok:
		return "", emailErr(`no "@"`)
	case strings.Contains(domain, "@"):
		return "", emailErr(`more than one "@"`)
	case local == "":
		return "", emailErr("empty local part")
	case len(local) > maxEmailLocalLen:
		return "", emailErr(fmt.Sprintf("local part longer than %d bytes", maxEmailLocalLen))
	case local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, ".."):
		return "", emailErr("local part starts or ends with a dot or has two dots in a row")
	case domain == "":
		return "", emailErr("empty domain")
	case !strings.Contains(domain, "."):
		return "", emailErr("domain has no dot")
	}
	for label := range strings.SplitSeq(domain, ".") {
		switch {
		case label == "":
			return "", emailErr("domain has an empty label (leading, trailing or double dot)")
		case len(label) > maxDomainLabel:
			return "", emailErr(fmt.Sprintf("domain label longer than %d bytes", maxDomainLabel))
		case label[0] == '-' || label[len(label)-1] == '-':
			return "", emailErr(`domain label starts or ends with "-"`)
		}
	}
	return s, nil
}

func emailErr(reason string) error { return invalid(Email, reason) }
