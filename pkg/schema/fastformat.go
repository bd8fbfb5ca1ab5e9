package schema

import (
	"bytes"
	"fmt"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Formats on the fast path. The hot ones (date-time and uuid: every event carries several) are
// allocation-free re-implementations of santhosh-tekuri/jsonschema v6's checks (format.go), kept
// equal to them by FuzzFastFormats. Every other format calls the library's own check, so it is equal
// by construction (it allocates, but it is rare on the hot path).

// fastFormat returns the check of the format name as the generic validator, with format assertions
// on, applies it to strings; nil if the library ignores the format (it ignores unknown names).
func fastFormat(name string) (func([]byte) bool, error) {
	switch name {
	case "date-time":
		return fastDateTime, nil
	case "uuid":
		return fastUUID, nil
	}
	f, err := libraryFormat(name)
	if err != nil || f == nil {
		return nil, err
	}
	return func(s []byte) bool { return f.Validate(string(s)) == nil }, nil
}

// libraryFormat returns the library's check of the format name (nil if it has none), read from a
// schema {"format": name} compiled the way newRegistry compiles.
func libraryFormat(name string) (*jsonschema.Format, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.UseLoader(refuseLoader{})
	const url = BaseURL + "fast-format.json"
	if err := c.AddResource(url, map[string]any{"format": name}); err != nil {
		return nil, fmt.Errorf("format %q: %w", name, err)
	}
	sch, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("format %q: %w", name, err)
	}
	return sch.Format, nil
}

// fastUUID is the library's validateUUID: five groups of 8, 4, 4, 4 and 12 hex digits separated by
// hyphens (any case).
func fastUUID(s []byte) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isHex(c) {
				return false
			}
		}
	}
	return true
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// fastDateTime is the library's validateDateTime: at least 20 bytes, a date (time.Parse with layout
// 2006-01-02), t or T, and a time as validateTime reads it.
func fastDateTime(s []byte) bool {
	if len(s) < 20 || s[10] != 't' && s[10] != 'T' {
		return false
	}
	return fastDate(s[:10]) && fastTime(s[11:])
}

// fastDate reports whether time.Parse("2006-01-02", s) succeeds: four digits, '-', two digits
// forming a month 01-12, '-', two digits forming a day of that month (the proleptic Gregorian
// calendar, year 0000 included), and nothing else.
func fastDate(s []byte) bool {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return false
	}
	for _, i := range [...]int{0, 1, 2, 3, 5, 6, 8, 9} {
		if !isDigit(s[i]) {
			return false
		}
	}
	year := int(s[0]-'0')*1000 + int(s[1]-'0')*100 + int(s[2]-'0')*10 + int(s[3]-'0')
	month := int(s[5]-'0')*10 + int(s[6]-'0')
	day := int(s[8]-'0')*10 + int(s[9]-'0')
	if month < 1 || month > 12 || day < 1 {
		return false
	}
	days := [...]int{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[month-1]
	if month == 2 && year%4 == 0 && (year%100 != 0 || year%400 == 0) {
		days = 29
	}
	return day <= days
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// fastTime is the library's validateTime, statement for statement: hh:mm:ss split at the first two
// colons and read with strconv.Atoi (so "+1" and "-0" are accepted as hours), an optional fraction,
// then Z, z or a ±hh:mm offset; a leap second only at 23:59 UTC.
func fastTime(str []byte) bool {
	if len(str) < 9 || str[2] != ':' || str[5] != ':' {
		return false
	}
	// strings.SplitN(str[:8], ":", 3)
	hs, rest, _ := bytes.Cut(str[:8], []byte{':'})
	ms, ss, _ := bytes.Cut(rest, []byte{':'})
	h, ok1 := atoi(hs)
	m, ok2 := atoi(ms)
	sec, ok3 := atoi(ss)
	if !ok1 || !ok2 || !ok3 || h < 0 || m < 0 || sec < 0 {
		return false
	}
	if h > 23 || m > 59 || sec > 60 {
		return false
	}
	str = str[8:]
	if len(str) > 0 && str[0] == '.' {
		rem := str[1:]
		n := 0
		for n < len(rem) && isDigit(rem[n]) {
			n++
		}
		if n == 0 {
			return false
		}
		str = rem[n:]
	}
	if len(str) != 1 || (str[0] != 'z' && str[0] != 'Z') {
		if len(str) != 6 {
			return false
		}
		var sign int
		switch str[0] {
		case '+':
			sign = -1
		case '-':
			sign = +1
		default:
			return false
		}
		str = str[1:]
		if str[2] != ':' {
			return false
		}
		// strings.SplitN(str, ":", 2)
		zhs, zms, _ := bytes.Cut(str, []byte{':'})
		zh, ok1 := atoi(zhs)
		zm, ok2 := atoi(zms)
		if !ok1 || !ok2 || zh < 0 || zm < 0 || zh > 23 || zm > 59 {
			return false
		}
		hm := (h*60 + m) + sign*(zh*60+zm)
		if hm < 0 {
			hm += 24 * 60
		}
		h, m = hm/60, hm%60
	}
	return sec < 60 || h == 23 && m == 59
}

// atoi is strconv.Atoi for the short strings fastTime reads (fewer than 19 bytes): an optional sign
// and at least one decimal digit.
func atoi(s []byte) (int, bool) {
	if len(s) == 0 {
		return 0, false
	}
	neg := s[0] == '-'
	if s[0] == '-' || s[0] == '+' {
		s = s[1:]
		if len(s) == 0 {
			return 0, false
		}
	}
	n := 0
	for _, c := range s {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}
