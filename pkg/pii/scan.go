package pii

import (
	"regexp"
	"sort"
	"strings"
)

// Finding is one piece of unmasked personal data in a text.
type Finding struct {
	Kind       Kind
	Start, End int    // byte offsets in the scanned text
	Value      string // the text found, as written
}

// Mask returns the finding's masked form.
func (f Finding) Mask() string { return Mask(f.Kind, f.Value) }

// maxCandidate bounds the digits of one candidate: a 19-digit card, or 0086 + 11 digits.
const maxCandidate = 19

var emailRE = regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}`)

// Scan returns the unmasked phone numbers, ID-card numbers, bank-card numbers and e-mail
// addresses in s, in order of position (see the package documentation for what counts).
func Scan(s string) []Finding {
	out := scanNumbers(s)
	for _, loc := range emailRE.FindAllStringIndex(s, -1) {
		out = append(out, Finding{Kind: KindEmail, Start: loc[0], End: loc[1], Value: s[loc[0]:loc[1]]})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Start != out[j].Start {
			return out[i].Start < out[j].Start
		}
		return out[i].End > out[j].End
	})
	// An e-mail's local part may itself hold a phone number: keep the outer finding.
	kept := out[:0]
	end := -1
	for _, f := range out {
		if f.Start < end {
			continue
		}
		kept = append(kept, f)
		end = f.End
	}
	return kept
}

// Contains reports whether s holds any unmasked phone, ID-card or bank-card number (e-mail
// addresses are not counted).
func Contains(s string) bool {
	for _, f := range scanNumbers(s) {
		if f.Kind != KindEmail {
			return true
		}
	}
	return false
}

// Redact returns s with every finding of Scan replaced by its mask. Scan(Redact(s)) is empty.
func Redact(s string) string {
	if out, ok := replaceFindings(s, Finding.Mask); ok {
		return out
	}
	// Pathological input that keeps producing findings: mask every digit run.
	return digitRunRE.ReplaceAllString(s, "****")
}

// replaceFindings replaces every finding of Scan in s by what repl returns for it, again until
// Scan finds nothing (ok) or 8 rounds have passed.
func replaceFindings(s string, repl func(Finding) string) (out string, ok bool) {
	for range 8 {
		fs := Scan(s)
		if len(fs) == 0 {
			return s, true
		}
		var b strings.Builder
		b.Grow(len(s))
		last := 0
		for _, f := range fs {
			b.WriteString(s[last:f.Start])
			b.WriteString(repl(f))
			last = f.End
		}
		b.WriteString(s[last:])
		s = b.String()
	}
	return s, false
}

var digitRunRE = regexp.MustCompile(`[0-9]+`)

// group is one run of digits (possibly ending in an ID card's X check character).
type group struct {
	start, end int // byte offsets of the digits (end includes a trailing X)
	digits     string
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func scanNumbers(s string) []Finding {
	var out []Finding
	i := 0
	for i < len(s) {
		if !isDigit(s[i]) || (i > 0 && isDigit(s[i-1])) {
			i++
			continue
		}
		// A run: digit groups separated by single spaces or dashes.
		runStart := i
		plus := i > 0 && s[i-1] == '+'
		if plus {
			runStart = i - 1
		}
		var groups []group
		for {
			j := i
			for j < len(s) && isDigit(s[j]) {
				j++
			}
			g := group{start: i, end: j, digits: s[i:j]}
			if j < len(s) && (s[j] == 'X' || s[j] == 'x') && (j+1 == len(s) || !isAlnum(s[j+1])) {
				g.end = j + 1
				g.digits += "X"
				groups = append(groups, g)
				i = j + 1
				break
			}
			groups = append(groups, g)
			i = j
			if j+1 < len(s) && (s[j] == ' ' || s[j] == '-') && isDigit(s[j+1]) {
				i = j + 1
				continue
			}
			break
		}
		// Digits glued to ASCII letters belong to an identifier (a UUID such as
		// …2ca1-4144-9903-54ca…, a waybill such as JDVA17131486232), not a number someone wrote.
		if last := groups[len(groups)-1].end; (runStart > 0 && isLetter(s[runStart-1])) ||
			(last < len(s) && isLetter(s[last])) || uuidShaped(groups) {
			continue
		}
		for a := 0; a < len(groups); {
			matched := -1
			var kind Kind
			n := 0
			for b := a; b < len(groups); b++ {
				n += len(groups[b].digits)
				if n > maxCandidate {
					break
				}
				if strings.Contains(groups[b].digits, "X") && b < len(groups)-1 {
					break
				}
				if k := classify(joinDigits(groups[a : b+1])); k != "" {
					matched, kind = b, k
				}
			}
			if matched < 0 {
				a++
				continue
			}
			start := groups[a].start
			if a == 0 && plus {
				start = runStart
			}
			end := groups[matched].end
			out = append(out, Finding{Kind: kind, Start: start, End: end, Value: s[start:end]})
			a = matched + 1
		}
	}
	return out
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// uuidShaped reports digit groups laid out as a UUID's 8-4-4-4-12.
func uuidShaped(gs []group) bool {
	if len(gs) != 5 {
		return false
	}
	for i, n := range []int{8, 4, 4, 4, 12} {
		if len(gs[i].digits) != n {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return isDigit(c) || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func joinDigits(gs []group) string {
	if len(gs) == 1 {
		return gs[0].digits
	}
	var b strings.Builder
	for _, g := range gs {
		b.WriteString(g.digits)
	}
	return b.String()
}

// classify names the kind of a candidate of digits (an ID card's last character may be X).
func classify(d string) Kind {
	if len(d) == 18 && validIDCard(d) {
		return KindIDCard
	}
	if strings.HasSuffix(d, "X") {
		return ""
	}
	if isMobile(d) {
		return KindPhone
	}
	if len(d) >= 13 && len(d) <= 19 && d[0] >= '3' && d[0] <= '6' && luhn(d) {
		return KindBankCard
	}
	return ""
}

// isMobile reports a mainland mobile number: 1[3-9] and 9 more digits, optionally after 86 or 0086.
func isMobile(d string) bool {
	switch {
	case len(d) == 13 && strings.HasPrefix(d, "86"):
		d = d[2:]
	case len(d) == 15 && strings.HasPrefix(d, "0086"):
		d = d[4:]
	}
	return len(d) == 11 && d[0] == '1' && d[1] >= '3' && d[1] <= '9'
}

var idWeights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

const idCheck = "10X98765432"

// validIDCard checks an 18-character resident ID: a plausible birth date (YYYYMMDD at 6..14,
// 1900-2099) and the ISO 7064 MOD 11-2 check character.
func validIDCard(d string) bool {
	if len(d) != 18 {
		return false
	}
	sum := 0
	for i := 0; i < 17; i++ {
		if !isDigit(d[i]) {
			return false
		}
		sum += int(d[i]-'0') * idWeights[i]
	}
	last := d[17]
	if last == 'x' {
		last = 'X'
	}
	if idCheck[sum%11] != last {
		return false
	}
	year := atoi(d[6:10])
	month := atoi(d[10:12])
	day := atoi(d[12:14])
	if year < 1900 || year > 2099 || month < 1 || month > 12 || day < 1 {
		return false
	}
	days := [13]int{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}
	return day <= days[month]
}

func atoi(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// luhn checks the Luhn (mod 10) check digit of a card number.
func luhn(d string) bool {
	sum := 0
	double := false
	for i := len(d) - 1; i >= 0; i-- {
		c := d[i]
		if !isDigit(c) {
			return false
		}
		n := int(c - '0')
		if double {
			n *= 2
			if n > 9 {
				n -= 9
			}
		}
		sum += n
		double = !double
	}
	return sum%10 == 0
}

// IDCardCheck returns the check character of the first 17 digits of a resident ID (for tests
// and sample data).
func IDCardCheck(first17 string) byte {
	sum := 0
	for i := 0; i < 17 && i < len(first17); i++ {
		sum += int(first17[i]-'0') * idWeights[i]
	}
	return idCheck[sum%11]
}

// LuhnCheck returns the Luhn check digit to append to partial (for tests and sample data).
func LuhnCheck(partial string) byte {
	for c := byte('0'); c <= '9'; c++ {
		if luhn(partial + string(c)) {
			return c
		}
	}
	return '0'
}
