package sentiment

import (
	"bufio"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// ErrInvalidLexicon is returned, wrapped with the line at fault, when a lexicon cannot be read.
var ErrInvalidLexicon = errors.New("sentiment: invalid lexicon")

// Kind is what a lexicon entry does, or what produced a [Cue].
type Kind string

// Lexicon entry kinds. Only Sentiment, Escalation and Courtesy entries become cues; the others
// change the cue that follows them and show in its Modifiers.
const (
	// Sentiment: Value is the valence, in [-4, 4]. 0 is allowed, to neutralise a longer term
	// that would otherwise be read through a shorter one ("好的" is "OK", not "good").
	Sentiment Kind = "sentiment"
	// Escalation: a complaint or threat that should reach a supervisor (投诉, 12315, "speak to
	// your manager"). Value is a valence in [-4, 0); it sets [Result.Escalation].
	Escalation Kind = "escalation"
	// Courtesy: thanks and the like. Value in (0, 4] counts only when the message makes no
	// request, so "麻烦帮我查一下，谢谢" stays neutral while "谢谢，解决了" does not.
	Courtesy Kind = "courtesy"
	// Request: marks a message as a request or a question (请问, 麻烦您, "could you"). No value.
	Request Kind = "request"
	// Negator: flips the next sentiment term within a few units in the same clause (不, 没有,
	// "don't"). A second negator cancels the first. No value.
	Negator Kind = "negator"
	// Intensifier: multiplies the next sentiment term in the clause; Value in (1, 4].
	Intensifier Kind = "intensifier"
	// Diminisher: multiplies the next sentiment term in the clause; Value in (0, 1).
	Diminisher Kind = "diminisher"
	// Contrast: "但是", "but": cues before the last contrast weigh half, cues after one and a
	// half. No value.
	Contrast Kind = "contrast"

	// Emphasis is not a lexicon kind: the cue of repeated exclamation marks or of a word in
	// capitals, which push the score further in the direction it already has.
	Emphasis Kind = "emphasis"
	// Impatience is not a lexicon kind: the cue of repeated question marks (？？, ???) or of
	// ?! — in a contact centre, a customer chasing an answer.
	Impatience Kind = "impatience"
)

// Entry is one lexicon term.
type Entry struct {
	// Term is matched after NFKC normalisation and lower-casing: Chinese character by character,
	// other scripts word by word, so "cancel my account" matches "Cancel  my ACCOUNT".
	Term  string
	Kind  Kind
	Value float64
}

// The default lexicon is two embedded files: English word valences from VADER (a general,
// independently rated vocabulary) and then the project's own lexicon, which overrides them.
var (
	//go:embed lexicon_vader.tsv
	vaderLexicon string
	//go:embed lexicon.tsv
	defaultLexicon string
)

// DefaultLexicon returns the embedded lexicon every [Analyzer] starts from unless built with
// [WithoutDefaultLexicon]: lexicon_vader.tsv, then lexicon.tsv, whose entries replace any
// earlier entry for the same term.
func DefaultLexicon() []Entry {
	var entries []Entry
	for _, file := range []string{vaderLexicon, defaultLexicon} {
		e, err := ParseLexicon(strings.NewReader(file))
		if err != nil {
			panic(err) // the embedded files are checked by the tests
		}
		entries = append(entries, e...)
	}
	return entries
}

// ParseLexicon reads a lexicon: one entry a line, "term<TAB>kind<TAB>value", value omitted for
// request, negator and contrast. Blank lines and lines starting with # are skipped. Errors wrap
// [ErrInvalidLexicon] and name the line.
func ParseLexicon(r io.Reader) ([]Entry, error) {
	var entries []Entry
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, "\t")
		if len(fields) < 2 || len(fields) > 3 {
			return nil, fmt.Errorf("%w: line %d: want term<TAB>kind[<TAB>value], got %q", ErrInvalidLexicon, n, line)
		}
		e := Entry{Term: strings.TrimSpace(fields[0]), Kind: Kind(strings.TrimSpace(fields[1]))}
		if len(fields) == 3 {
			v, err := strconv.ParseFloat(strings.TrimSpace(fields[2]), 64)
			if err != nil {
				return nil, fmt.Errorf("%w: line %d: value %q: %w", ErrInvalidLexicon, n, fields[2], err)
			}
			e.Value = v
		}
		if err := e.validate(); err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrInvalidLexicon, n, err)
		}
		entries = append(entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidLexicon, err)
	}
	return entries, nil
}

func (e Entry) validate() error {
	if e.Term == "" {
		return errors.New("empty term")
	}
	v := e.Value
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("term %q: value %v is not a number", e.Term, v)
	}
	bad := func(want string) error {
		return fmt.Errorf("term %q: %s value %v, want %s", e.Term, e.Kind, v, want)
	}
	switch e.Kind {
	case Sentiment:
		if v < -4 || v > 4 {
			return bad("in [-4, 4]")
		}
	case Escalation:
		if v < -4 || v >= 0 {
			return bad("in [-4, 0)")
		}
	case Courtesy:
		if v <= 0 || v > 4 {
			return bad("in (0, 4]")
		}
	case Intensifier:
		if v <= 1 || v > 4 {
			return bad("in (1, 4]")
		}
	case Diminisher:
		if v <= 0 || v >= 1 {
			return bad("in (0, 1)")
		}
	case Request, Negator, Contrast:
		if v != 0 {
			return bad("none")
		}
	default:
		return fmt.Errorf("term %q: unknown kind %q (want sentiment, escalation, courtesy, request, negator, intensifier, diminisher or contrast)", e.Term, e.Kind)
	}
	return nil
}

// trie holds the lexicon as paths of unit ids; the longest path matching at a position wins.
type trie struct {
	edges   map[edge]int32
	entry   []int32 // per node: index into entries, or -1
	entries []Entry
	vocab   vocab
}

type edge struct {
	from int32
	unit uint32
}

func newTrie() *trie {
	return &trie{edges: map[edge]int32{}, entry: []int32{-1}, vocab: vocab{words: map[string]uint32{}}}
}

// add puts e in the trie; an entry for the same units replaces the earlier one, so a tenant's
// lexicon overrides the default.
func (t *trie) add(e Entry) error {
	if err := e.validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidLexicon, err)
	}
	units, _ := t.vocab.cut(normalize(e.Term), true, nil, nil)
	if len(units) == 0 {
		return fmt.Errorf("%w: term %q has nothing to match (only spaces or ignorable marks)", ErrInvalidLexicon, e.Term)
	}
	node := int32(0)
	for _, u := range units {
		next, ok := t.edges[edge{node, u.id}]
		if !ok {
			next = int32(len(t.entry))
			t.entry = append(t.entry, -1)
			t.edges[edge{node, u.id}] = next
		}
		node = next
	}
	if i := t.entry[node]; i >= 0 {
		t.entries[i] = e
		return nil
	}
	t.entry[node] = int32(len(t.entries))
	t.entries = append(t.entries, e)
	return nil
}

// longest returns the entry of the longest term starting at units[0] and how many units it
// covers, or -1 and 0.
func (t *trie) longest(units []unit) (int32, int) {
	best, n := int32(-1), 0
	node := int32(0)
	for i, u := range units {
		next, ok := t.edges[edge{node, u.id}]
		if !ok {
			break
		}
		node = next
		if e := t.entry[node]; e >= 0 {
			best, n = e, i+1
		}
	}
	return best, n
}
