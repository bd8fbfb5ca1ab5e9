package pii

import (
	"regexp"
	"strconv"
	"strings"
)

// Placeholders swaps the personal data Scan finds in a text for stable placeholders — <PHONE_1>,
// <ID_CARD_1>, <BANK_CARD_1>, <EMAIL_1>, numbered per kind in order of first appearance — and
// swaps them back. It is for text sent to a third party that must not see the data but whose
// answer may refer to it (a prompt to a language model): Replace the prompt, send it, Restore
// the answer.
//
// A value gets the same placeholder every time it is replaced by the same Placeholders, written
// exactly as before; a differently written number (with spaces, a +86) is a new value. Replace
// leaves nothing Scan finds, and Restore(Replace(s)) == s for any s holding no text shaped like a
// placeholder (fuzzed). The zero value is not usable: call NewPlaceholders. Not safe for
// concurrent use; one per request.
type Placeholders struct {
	byValue map[string]string // value → placeholder
	values  map[string]string // placeholder → value
	counts  map[Kind]int
	issued  []string
}

// NewPlaceholders returns an empty mapping.
func NewPlaceholders() *Placeholders {
	return &Placeholders{byValue: map[string]string{}, values: map[string]string{}, counts: map[Kind]int{}}
}

// placeholderRE matches a placeholder of any kind Scan reports.
var placeholderRE = regexp.MustCompile(`<(?:PHONE|ID_CARD|BANK_CARD|EMAIL)_[1-9][0-9]*>`)

// Replace returns s with every finding of Scan replaced by its placeholder.
func (p *Placeholders) Replace(s string) string {
	out, ok := replaceFindings(s, func(f Finding) string { return p.placeholder(f.Kind, f.Value) })
	if !ok {
		// Text that keeps producing findings (none is known): mask what is left.
		return Redact(out)
	}
	return out
}

func (p *Placeholders) placeholder(kind Kind, value string) string {
	if ph, ok := p.byValue[value]; ok {
		return ph
	}
	p.counts[kind]++
	ph := "<" + strings.ToUpper(string(kind)) + "_" + strconv.Itoa(p.counts[kind]) + ">"
	p.byValue[value] = ph
	p.values[ph] = value
	p.issued = append(p.issued, ph)
	return ph
}

// Restore returns s with every placeholder this mapping issued replaced by its value; other
// placeholder-shaped text is left as it is.
func (p *Placeholders) Restore(s string) string {
	if len(p.values) == 0 {
		return s
	}
	return placeholderRE.ReplaceAllStringFunc(s, func(ph string) string {
		if v, ok := p.values[ph]; ok {
			return v
		}
		return ph
	})
}

// Issued returns the placeholders issued so far, in order.
func (p *Placeholders) Issued() []string { return append([]string(nil), p.issued...) }
