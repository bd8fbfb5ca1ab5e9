package sentiment

import (
	"sort"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// A unit is what the lexicon matches on: one Han character, one word (a run of letters, digits
// and inner apostrophes, lower-cased), one clause break (, . ; : ! ? 。 、 … newline) or one
// other symbol (an emoji, a bracket). Chinese is matched character by character, so no
// segmenter is needed; English phrases are matched word by word. Lexicon terms and messages are
// cut into units by the same function, which is what makes "不满意", "cancel my account" and
// ":(" all plain lexicon entries.
type unit struct {
	id   uint32 // the rune for Han, breaks and symbols; wordBase+n for a lexicon word; unknownWord
	kind unitKind
	// caps marks a word of three or more letters, all upper-case, in a message: shouting.
	caps bool
	// latin marks a word with a Latin letter; enWord one with two or more that is not written
	// in capitals (acronyms such as APP or VIP inside Chinese text do not make it English).
	latin, enWord bool
	// start and end are byte offsets into the normalised text.
	start, end int32
}

type unitKind uint8

const (
	unitHan unitKind = iota
	unitWord
	unitBreak
	unitSymbol
)

const (
	// wordBase is the first word id: above every rune, so rune and word ids never collide.
	wordBase = 0x200000
	// unknownWord is the id of a word the lexicon does not contain: no trie edge uses it.
	unknownWord = ^uint32(0)
)

// normalize applies NFKC, which maps full-width forms to half-width (！→!, ？→?, ，→, ,
// Ａ→A), compatibility ideographs to their unified form and "…" to "...". Text already in NFKC
// is returned as is without allocating.
func normalize(s string) string {
	if norm.NFKC.IsNormalString(s) {
		return s
	}
	return norm.NFKC.String(s)
}

// segment is where one normalisation segment starts in the normalised text and in the
// original: NFKC works on segments independently, so offsets map back segment by segment.
type segment struct{ norm, orig int }

// offsets maps byte offsets in normalised text back to the original; nil when they are equal.
type offsets []segment

// normalizeMapped is normalize that also returns how to map offsets back. Chinese text is
// rarely in NFKC (its ，and ！ are full-width), so this is the common path for it.
func normalizeMapped(s string, segs offsets, buf []byte) (string, offsets, []byte) {
	if norm.NFKC.IsNormalString(s) {
		return s, nil, buf
	}
	var it norm.Iter
	it.InitString(norm.NFKC, s)
	out, segs := buf[:0], segs[:0]
	for !it.Done() {
		segs = append(segs, segment{norm: len(out), orig: it.Pos()})
		out = append(out, it.Next()...)
	}
	segs = append(segs, segment{norm: len(out), orig: len(s)})
	return string(out), segs, out
}

// span maps the normalised span [start, end) back to the smallest span of whole segments of the
// original that produced it.
func (o offsets) span(start, end int) (int, int) {
	if o == nil {
		return start, end
	}
	// The last segment starting at or before start, and the first starting at or after end.
	i := sort.Search(len(o), func(i int) bool { return o[i].norm > start }) - 1
	j := sort.Search(len(o), func(j int) bool { return o[j].norm >= end })
	return o[max(i, 0)].orig, o[min(j, len(o)-1)].orig
}

//go:generate go run ./internal/gentradsimp

// tradSimp maps traditional Chinese characters to simplified ones, so 投訴 and 滿意 match the
// lexicon's 投诉 and 满意. It is applied to messages and lexicon terms alike, so a tenant's
// traditional terms match simplified text too. Character by character: a traditional word
// written differently from its simplified counterpart (not just its characters) is not mapped.
var tradSimp = sync.OnceValue(func() map[rune]rune {
	m := make(map[rune]rune, 6300)
	t := rune(-1)
	for _, r := range tradSimpPairs {
		if t < 0 {
			t = r
			continue
		}
		m[t], t = r, -1
	}
	return m
})

// vocab maps the lexicon's words to their ids.
type vocab struct {
	words map[string]uint32
}

// cut appends the units of s, which must be normalised, to dst. With intern, unknown words are
// added to the vocabulary (building the lexicon); without it they get unknownWord (analysing a
// message, which must not grow the vocabulary). buf is scratch space for lower-casing.
func (v *vocab) cut(s string, intern bool, dst []unit, buf []byte) ([]unit, []byte) {
	simp := tradSimp()
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '\n' || isBreak(r):
			dst = append(dst, unit{id: uint32(r), kind: unitBreak, start: int32(i), end: int32(i + size)})
			i += size
		case isIgnorable(r) || unicode.IsSpace(r):
			i += size
		case unicode.Is(unicode.Han, r):
			if sr, ok := simp[r]; ok {
				r = sr
			}
			dst = append(dst, unit{id: uint32(r), kind: unitHan, start: int32(i), end: int32(i + size)})
			i += size
		case isWordRune(r):
			var u unit
			u, buf, i = v.word(s, i, intern, buf)
			dst = append(dst, u)
		default:
			dst = append(dst, unit{id: uint32(r), kind: unitSymbol, start: int32(i), end: int32(i + size)})
			i += size
		}
	}
	return dst, buf
}

// word reads the word starting at s[i] and returns it with the offset after it.
func (v *vocab) word(s string, i int, intern bool, buf []byte) (unit, []byte, int) {
	start := i
	buf = buf[:0]
	letters, upper, latin := 0, 0, 0
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if isApostrophe(r) {
			// Inside a word only: don't, it's, can’t. A quote mark around a word is not part of it.
			next, _ := utf8.DecodeRuneInString(s[i+size:])
			if letters == 0 || !unicode.IsLetter(next) || unicode.Is(unicode.Han, next) {
				break
			}
			buf = append(buf, '\'')
			i += size
			continue
		}
		if !isWordRune(r) {
			break
		}
		if unicode.IsLetter(r) {
			letters++
			if r < 0x250 {
				latin++
			}
			if unicode.IsUpper(r) {
				upper++
			}
		}
		if r < utf8.RuneSelf {
			if 'A' <= r && r <= 'Z' {
				r += 'a' - 'A'
			}
			buf = append(buf, byte(r))
		} else {
			buf = utf8.AppendRune(buf, unicode.ToLower(r))
		}
		i += size
	}
	u := unit{kind: unitWord, start: int32(start), end: int32(i)}
	u.caps = letters >= 3 && upper == letters
	u.latin = latin > 0
	u.enWord = latin >= 2 && upper != letters
	if id, ok := v.words[string(buf)]; ok {
		u.id = id
	} else if intern {
		u.id = wordBase + uint32(len(v.words))
		v.words[string(buf)] = u.id
	} else {
		u.id = unknownWord
	}
	return u, buf, i
}

// isWordRune reports the runes words are made of. Apostrophes are not among them, even U+02BC
// which Unicode counts as a letter: word reads them only inside a word, so one that starts a
// word must not send cut to word (it would read nothing and cut would never advance).
func isWordRune(r rune) bool {
	return (unicode.IsLetter(r) || unicode.IsDigit(r)) && !unicode.Is(unicode.Han, r) && !isApostrophe(r)
}

func isApostrophe(r rune) bool { return r == '\'' || r == '\u2019' || r == '\u02bc' }

// isBreak reports the punctuation that ends a clause: negation and intensifiers do not reach
// across it, and runs of ! and ? among it are counted.
func isBreak(r rune) bool {
	switch r {
	case ',', '.', ';', ':', '!', '?', '。', '、', '；', '：', '~', '～', '｡', '､':
		return true
	}
	return false
}

// isIgnorable reports the code points that carry no meaning of their own for sentiment: emoji
// presentation selectors, joiners, skin-tone modifiers, combining and format marks.
func isIgnorable(r rune) bool {
	switch {
	case r == '\ufe0f' || r == '\ufe0e' || r == '\u200d' || r == '\u200b' || r == '\ufeff':
		return true
	case r >= 0x1f3fb && r <= 0x1f3ff:
		return true
	case r < 0x300:
		return false
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf)
}
