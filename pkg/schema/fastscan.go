package schema

import (
	"bytes"
	"slices"
	"sync"
	"unicode/utf8"
)

// The scanner of the fast path. It checks that data is one JSON document, exactly as
// jsonschema.UnmarshalJSON (encoding/json's Decoder followed by a check for end of input) would accept
// it, and lays it out as a tape: one token per value (and per object key), in document order, each
// container followed by its members. The validator then walks the tape, as often as the applicators
// (allOf, anyOf, if/then/else) need, without parsing again.
//
// The scanner is strict where encoding/json is lenient in ways that change the decoded value. It
// reports false (and the generic validator decides) for:
//   - invalid UTF-8 and escaped lone surrogates (encoding/json replaces both with U+FFFD),
//   - an object with the same key twice (encoding/json keeps the last, which a negated subschema such
//     as "if" could see differently from a fast path that checks every occurrence),
//   - nesting deeper than maxFastDepth and documents of 2 GiB or more.
// Everything else it rejects (syntax errors, control characters in strings, trailing data) the
// Decoder rejects as well.

// tokKind is the JSON type of a tape token.
type tokKind uint8

const (
	kNull tokKind = iota + 1
	kFalse
	kTrue
	kNumber
	kString
	kArray
	kObject
)

// token is one JSON value (or object key) of the tape.
type token struct {
	kind tokKind
	// esc is set on strings that contained escapes: start:end then index scratch.buf, which holds the
	// decoded text, instead of the data.
	esc bool
	// start:end is the string's text without quotes, or the number's literal; for containers, the
	// offsets of the brackets (for debugging only).
	start, end uint32
	// next is the tape index just past this value and all its members.
	next uint32
	// n is the rune count of a string, the element count of an array, the member count of an object.
	n uint32
}

const (
	// maxFastDepth bounds the nesting of documents the fast path scans (encoding/json allows 10000;
	// deeper documents go to the generic validator).
	maxFastDepth = 512
	// maxFastLen bounds the size of documents the fast path scans (tape offsets are uint32).
	maxFastLen = 1<<31 - 1
	// pairwiseDupMax is the member count up to which objects are checked for duplicate keys by
	// comparing every pair; larger objects sort their keys.
	pairwiseDupMax = 16
)

// scratch is the reusable state of one fast validation: the tape, the decoded escaped strings and
// the stacks of the scanner. It is pooled; a validation allocates only while a scratch grows.
type scratch struct {
	data []byte
	tape []token
	buf  []byte   // decoded text of strings with escapes
	keys []uint32 // tape indexes of the keys of the objects being scanned, innermost last
	idx  []uint32 // sort buffer of the duplicate-key check
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// Scratches that grew past these sizes (a huge document) are dropped rather than pooled.
const (
	maxPooledTape = 1 << 16
	maxPooledBuf  = 1 << 20
)

func getScratch() *scratch { return scratchPool.Get().(*scratch) }

func putScratch(s *scratch) {
	s.data = nil
	if cap(s.tape) > maxPooledTape || cap(s.buf) > maxPooledBuf {
		return
	}
	scratchPool.Put(s)
}

// scan lays data out on the tape. It reports false if data is not a JSON document the fast path
// handles (see the comment at the top of this file); the tape is then unusable.
func (s *scratch) scan(data []byte) bool {
	if len(data) > maxFastLen {
		return false
	}
	s.data = data
	s.tape = s.tape[:0]
	s.buf = s.buf[:0]
	s.keys = s.keys[:0]
	p, ok := s.value(skipSpace(data, 0), 0)
	return ok && skipSpace(data, p) == len(data)
}

// text returns the (decoded) text of string token t.
func (s *scratch) text(t *token) []byte {
	if t.esc {
		return s.buf[t.start:t.end]
	}
	return s.data[t.start:t.end]
}

// skipSpace returns the offset of the first byte at or after p that is not JSON whitespace.
func skipSpace(data []byte, p int) int {
	for p < len(data) {
		switch data[p] {
		case ' ', '\t', '\n', '\r':
			p++
		default:
			return p
		}
	}
	return p
}

// value scans the value at data[p] (whitespace already skipped) and returns the offset after it.
func (s *scratch) value(p, depth int) (int, bool) {
	data := s.data
	if p >= len(data) {
		return p, false
	}
	switch c := data[p]; {
	case c == '"':
		return s.str(p)
	case c == '{':
		return s.object(p, depth+1)
	case c == '[':
		return s.array(p, depth+1)
	case c == '-' || c >= '0' && c <= '9':
		return s.number(p)
	case c == 't':
		return s.literal(p, "true", kTrue)
	case c == 'f':
		return s.literal(p, "false", kFalse)
	case c == 'n':
		return s.literal(p, "null", kNull)
	}
	return p, false
}

// push appends a token and returns its index.
func (s *scratch) push(t token) uint32 {
	i := uint32(len(s.tape))
	t.next = i + 1
	s.tape = append(s.tape, t)
	return i
}

func (s *scratch) literal(p int, lit string, k tokKind) (int, bool) {
	if len(s.data)-p < len(lit) || string(s.data[p:p+len(lit)]) != lit {
		return p, false
	}
	s.push(token{kind: k, start: uint32(p), end: uint32(p + len(lit))})
	return p + len(lit), true
}

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, the JSON number grammar.
func (s *scratch) number(p int) (int, bool) {
	data := s.data
	i := p
	if data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case i < len(data) && data[i] >= '1' && data[i] <= '9':
		i = skipDigits(data, i)
	default:
		return i, false
	}
	if i < len(data) && data[i] == '.' {
		j := skipDigits(data, i+1)
		if j == i+1 {
			return j, false
		}
		i = j
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		j := skipDigits(data, i)
		if j == i {
			return j, false
		}
		i = j
	}
	s.push(token{kind: kNumber, start: uint32(p), end: uint32(i)})
	return i, true
}

func skipDigits(data []byte, i int) int {
	for i < len(data) && data[i] >= '0' && data[i] <= '9' {
		i++
	}
	return i
}

// str scans the string whose opening quote is at data[p]. Strings without escapes (the common case)
// are referenced in place; the others are decoded into s.buf.
func (s *scratch) str(p int) (int, bool) {
	data := s.data
	runes := 0
	for i := p + 1; i < len(data); {
		c := data[i]
		switch {
		case c == '"':
			s.push(token{kind: kString, start: uint32(p + 1), end: uint32(i), n: uint32(runes)})
			return i + 1, true
		case c == '\\':
			return s.escapedStr(p, i)
		case c < 0x20:
			return i, false
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				return i, false
			}
			i += size
		}
		runes++
	}
	return len(data), false
}

// escapedStr continues str at the first backslash, data[i], decoding the string into s.buf as
// encoding/json does (except for lone surrogates, which it rejects).
func (s *scratch) escapedStr(p, i int) (int, bool) {
	data := s.data
	start := len(s.buf)
	s.buf = append(s.buf, data[p+1:i]...)
	for i < len(data) {
		c := data[i]
		switch {
		case c == '"':
			end := len(s.buf)
			s.push(token{kind: kString, esc: true, start: uint32(start), end: uint32(end),
				n: uint32(utf8.RuneCount(s.buf[start:end]))})
			return i + 1, true
		case c == '\\':
			if i+1 >= len(data) {
				return i, false
			}
			switch e := data[i+1]; e {
			case '"', '\\', '/':
				s.buf = append(s.buf, e)
			case 'b':
				s.buf = append(s.buf, '\b')
			case 'f':
				s.buf = append(s.buf, '\f')
			case 'n':
				s.buf = append(s.buf, '\n')
			case 'r':
				s.buf = append(s.buf, '\r')
			case 't':
				s.buf = append(s.buf, '\t')
			case 'u':
				r, ok := hex4(data, i+2)
				if !ok {
					return i, false
				}
				i += 6
				if r >= 0xD800 && r < 0xE000 {
					// Only a high surrogate followed by an escaped low one is a character.
					lo, ok := rune(0), false
					if r < 0xDC00 && i+1 < len(data) && data[i] == '\\' && data[i+1] == 'u' {
						lo, ok = hex4(data, i+2)
					}
					if !ok || lo < 0xDC00 || lo >= 0xE000 {
						return i, false
					}
					r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
					i += 6
				}
				s.buf = utf8.AppendRune(s.buf, r)
				continue
			default:
				return i, false
			}
			i += 2
		case c < 0x20:
			return i, false
		case c < utf8.RuneSelf:
			s.buf = append(s.buf, c)
			i++
		default:
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				return i, false
			}
			s.buf = append(s.buf, data[i:i+size]...)
			i += size
		}
	}
	return len(data), false
}

// hex4 decodes the four hex digits at data[i:].
func hex4(data []byte, i int) (rune, bool) {
	if i+4 > len(data) {
		return 0, false
	}
	var r rune
	for _, c := range data[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

func (s *scratch) array(p, depth int) (int, bool) {
	if depth > maxFastDepth {
		return p, false
	}
	data := s.data
	ai := s.push(token{kind: kArray, start: uint32(p)})
	n := uint32(0)
	p = skipSpace(data, p+1)
	if p < len(data) && data[p] == ']' {
		p++
	} else {
		for {
			var ok bool
			if p, ok = s.value(p, depth); !ok {
				return p, false
			}
			n++
			p = skipSpace(data, p)
			if p >= len(data) {
				return p, false
			}
			if data[p] == ']' {
				p++
				break
			}
			if data[p] != ',' {
				return p, false
			}
			p = skipSpace(data, p+1)
		}
	}
	a := &s.tape[ai]
	a.n, a.end, a.next = n, uint32(p-1), uint32(len(s.tape))
	return p, true
}

func (s *scratch) object(p, depth int) (int, bool) {
	if depth > maxFastDepth {
		return p, false
	}
	data := s.data
	oi := s.push(token{kind: kObject, start: uint32(p)})
	mark := len(s.keys)
	p = skipSpace(data, p+1)
	if p < len(data) && data[p] == '}' {
		p++
	} else {
		for {
			if p >= len(data) || data[p] != '"' {
				return p, false
			}
			s.keys = append(s.keys, uint32(len(s.tape)))
			var ok bool
			if p, ok = s.str(p); !ok {
				return p, false
			}
			p = skipSpace(data, p)
			if p >= len(data) || data[p] != ':' {
				return p, false
			}
			if p, ok = s.value(skipSpace(data, p+1), depth); !ok {
				return p, false
			}
			p = skipSpace(data, p)
			if p >= len(data) {
				return p, false
			}
			if data[p] == '}' {
				p++
				break
			}
			if data[p] != ',' {
				return p, false
			}
			p = skipSpace(data, p+1)
		}
	}
	keys := s.keys[mark:]
	if s.hasDuplicate(keys) {
		return p, false
	}
	o := &s.tape[oi]
	o.n, o.end, o.next = uint32(len(keys)), uint32(p-1), uint32(len(s.tape))
	s.keys = s.keys[:mark]
	return p, true
}

// hasDuplicate reports whether two of the key tokens keys have the same (decoded) text.
func (s *scratch) hasDuplicate(keys []uint32) bool {
	if len(keys) <= pairwiseDupMax {
		for i := 1; i < len(keys); i++ {
			a := s.text(&s.tape[keys[i]])
			for _, k := range keys[:i] {
				if bytes.Equal(a, s.text(&s.tape[k])) {
					return true
				}
			}
		}
		return false
	}
	s.idx = append(s.idx[:0], keys...)
	slices.SortFunc(s.idx, func(a, b uint32) int {
		return bytes.Compare(s.text(&s.tape[a]), s.text(&s.tape[b]))
	})
	for i := 1; i < len(s.idx); i++ {
		if bytes.Equal(s.text(&s.tape[s.idx[i-1]]), s.text(&s.tape[s.idx[i]])) {
			return true
		}
	}
	return false
}
