package sentiment

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Label is the class of a message.
type Label string

// Labels.
const (
	Negative Label = "negative"
	Neutral  Label = "neutral"
	Positive Label = "positive"
)

// Lang is the language detected in a message.
type Lang string

// Languages.
const (
	LangZH    Lang = "zh"    // Han characters, and no English word
	LangEN    Lang = "en"    // Latin words, and no Han character
	LangMixed Lang = "mixed" // Han characters and at least one English word (not an acronym)
	LangUnd   Lang = "und"   // neither: only emoji, digits or punctuation, or empty
)

// Result is the sentiment of one message. Its JSON form (snake_case keys) is what services put
// in events, so agents and auditors see the cues as the analyser did.
type Result struct {
	// Score is in [-1, 1]: Raw / sqrt(Raw² + 4), so a single strong term (±2) scores ±0.71.
	Score float64 `json:"score"`
	// Raw is the sum of the cues' contributions.
	Raw   float64 `json:"raw"`
	Label Label   `json:"label"`
	// Confidence in [0, 1] is how far Score lies inside its label's band, not a calibrated
	// probability: 0.5 at a threshold, 1 at ±1 (or at 0 for neutral). A message with no cue at
	// all is Neutral with Confidence 0.5: nothing was recognised, which is not evidence.
	Confidence float64 `json:"confidence"`
	Lang       Lang    `json:"lang"`
	// Escalation is set when a complaint or threat term (投诉, 12315, "speak to your manager")
	// counted, not negated: the message wants a supervisor whatever its score.
	Escalation bool `json:"escalation"`
	// Cues are the terms and signals that make up Raw, in message order: why the label.
	Cues []Cue `json:"cues,omitempty"`
	// Truncated is set when the text was longer than [MaxInput] and only its start was read.
	Truncated bool `json:"truncated,omitempty"`
}

// Cue is one thing that moved the score.
type Cue struct {
	// Term is the lexicon term as written in the lexicon, or the punctuation or word that
	// made an Emphasis or Impatience cue.
	Term string `json:"term"`
	Kind Kind   `json:"kind"`
	// Weight is the lexicon value; Contribution is what the cue added to Raw after negation,
	// intensifiers, contrast and capitals, which Modifiers name.
	Weight       float64  `json:"weight"`
	Contribution float64  `json:"contribution"`
	Modifiers    []string `json:"modifiers,omitempty"`
	// Start and End are the byte offsets in the message of what the cue matched, and Text is
	// message[Start:End], as the customer wrote it (！！, 投訴), so a desk can highlight it.
	Text  string `json:"text"`
	Start int    `json:"start"`
	End   int    `json:"end"`
}

// Analyzer scores messages. It is safe for concurrent use and never changes after [New].
type Analyzer struct {
	lex      *trie
	neg, pos float64 // label thresholds on Score
	version  string
	scratch  sync.Pool
}

// options collects what the Options ask for; New turns it into an Analyzer.
type options struct {
	neg, pos     float64
	useDefault   bool
	extraEntries []Entry
	err          error
}

// ErrInvalidOption is returned, wrapped, by [New] for an option that cannot be used.
var ErrInvalidOption = errors.New("sentiment: invalid option")

// Option configures an [Analyzer].
type Option func(*options)

// WithLexicon adds the entries read from r (format: [ParseLexicon]) after the default lexicon:
// a term already there is replaced, so a tenant can add "chargeback", reweigh "退款" or set a
// term to 0 to neutralise it. Errors wrap [ErrInvalidLexicon].
func WithLexicon(r io.Reader) Option {
	return func(a *options) {
		entries, err := ParseLexicon(r)
		if err != nil {
			a.err = errors.Join(a.err, err)
			return
		}
		a.extraEntries = append(a.extraEntries, entries...)
	}
}

// WithLexiconFile is [WithLexicon] on the file at path.
func WithLexiconFile(path string) Option {
	return func(a *options) {
		f, err := os.Open(path)
		if err != nil {
			a.err = errors.Join(a.err, fmt.Errorf("%w: %w", ErrInvalidLexicon, err))
			return
		}
		defer f.Close()
		WithLexicon(f)(a)
		if a.err != nil {
			a.err = fmt.Errorf("%s: %w", path, a.err)
		}
	}
}

// WithEntries adds entries after the default lexicon, as [WithLexicon] does.
func WithEntries(entries ...Entry) Option {
	return func(a *options) { a.extraEntries = append(a.extraEntries, entries...) }
}

// WithoutDefaultLexicon starts from an empty lexicon: only the entries given by the other
// options are known.
func WithoutDefaultLexicon() Option {
	return func(a *options) { a.useDefault = false }
}

// WithThresholds sets the scores at or beyond which a message is Negative (default -0.3) or
// Positive (default 0.35). It fails with [ErrInvalidOption] unless -1 < negative < 0 < positive < 1.
func WithThresholds(negative, positive float64) Option {
	return func(a *options) {
		if !(negative > -1 && negative < 0 && positive > 0 && positive < 1) {
			a.err = errors.Join(a.err, fmt.Errorf("%w: thresholds %v, %v: want -1 < negative < 0 < positive < 1", ErrInvalidOption, negative, positive))
			return
		}
		a.neg, a.pos = negative, positive
	}
}

// Default thresholds on Score.
const (
	DefaultNegativeThreshold = -0.3
	DefaultPositiveThreshold = 0.35
)

// New builds an Analyzer from the default lexicon and the options. Errors wrap
// [ErrInvalidOption] or [ErrInvalidLexicon].
func New(opts ...Option) (*Analyzer, error) {
	o := options{neg: DefaultNegativeThreshold, pos: DefaultPositiveThreshold, useDefault: true}
	for _, opt := range opts {
		opt(&o)
	}
	if o.err != nil {
		return nil, o.err
	}
	a := &Analyzer{lex: newTrie(), neg: o.neg, pos: o.pos}
	var entries []Entry
	if o.useDefault {
		entries = DefaultLexicon()
	}
	h := sha256.New()
	fmt.Fprintf(h, "%v %v\n", a.neg, a.pos)
	for _, e := range append(entries, o.extraEntries...) {
		if err := a.lex.add(e); err != nil {
			return nil, err
		}
		fmt.Fprintf(h, "%s\t%v\t%v\n", e.Term, e.Kind, e.Value)
	}
	a.version = "lexicon-" + hex.EncodeToString(h.Sum(nil))[:12]
	a.scratch.New = func() any { return &scratch{} }
	return a, nil
}

var defaultAnalyzer = sync.OnceValue(func() *Analyzer {
	a, err := New()
	if err != nil {
		panic(err) // the embedded lexicon is checked by the tests
	}
	return a
})

// Version names what the analyser scores with: "lexicon-" and the first 12 hex digits of the
// SHA-256 of its thresholds and lexicon entries, in the order loaded. Two analysers with the same
// Version label every text alike; services put it in the provenance of their scores.
func (a *Analyzer) Version() string { return a.version }

// Default returns the analyser of [Analyze]: the default lexicon and thresholds, built once.
func Default() *Analyzer { return defaultAnalyzer() }

// Version is the default analyser's [Analyzer.Version].
func Version() string { return defaultAnalyzer().Version() }

// Analyze scores text with the default lexicon and thresholds.
func Analyze(text string) Result { return defaultAnalyzer().Analyze(text) }

// Tuning constants of the method; doc.go explains each.
const (
	negationWindow  = 4    // units after a negator in which it still applies
	modifierWindow  = 3    // units after an intensifier or diminisher in which it still applies
	negatePositive  = -0.8 // "不满意", "not happy"
	negateNegative  = -0.5 // "not bad" is less than "good"
	capsFactor      = 1.5  // a sentiment word in capitals
	beforeContrast  = 0.5
	afterContrast   = 1.5
	exclaimStep     = 0.3 // per exclamation mark beyond the first, up to exclaimMax
	exclaimMax      = 3
	capsEmphasis    = 0.5  // a word in capitals, when the message already leans one way
	impatienceValue = -1.2 // ？？, ???, ?!
	inRequest       = 0.4  // a positive term in a request or a question
	alpha           = 4.0  // Score = Raw / sqrt(Raw² + alpha)
)

// maxRunShown caps the ! or ? shown in a punctuation cue's Term: a run's weight is capped
// anyway, and a message of a million question marks must not cost a million-byte cue.
const maxRunShown = 8

// maxPooledUnits bounds the scratch kept between calls: chat messages and transcript segments
// are a few hundred units, and one pasted log file must not pin megabytes in the pool.
const maxPooledUnits = 4096

type scratch struct {
	units []unit
	buf   []byte
	segs  offsets
	norm  []byte
}

// state is the left-to-right pass over one message's units.
type state struct {
	cues       []Cue
	negLeft    int // units in which negTerm still applies
	negTerm    string
	modLeft    int
	modFactor  float64
	modTerms   []string
	contrastAt int // index in cues of the first cue after the last contrast, or -1
	contrast   string
	request    string // the first request marker seen
	questions  bool   // a ? anywhere
	exclaims   int    // exclamation marks in the longest run
	qRun       string // the longest run of ?, or a ?! mix, when it signals impatience
	caps       string // the first word in capitals
	// The spans in the normalised text of the longest ! run, of qRun and of caps.
	xSpan, qSpan, capsSpan [2]int
	courtesy               []int // indexes in cues of courtesy cues, settled at the end
	escalation             bool
	han, en                int
	latin                  bool
}

// MaxInput is how many bytes of a message Analyze reads; the rest is ignored and the result
// says Truncated. Chat messages and transcript segments are far shorter (the vendors take 200
// to 1,000 characters); the bound keeps one pasted log file from costing the bus milliseconds.
const MaxInput = 16 << 10

// Analyze scores text. It never fails: text that is not valid UTF-8 is read with U+FFFD for
// the bad bytes, text with nothing recognised is Neutral, and only the first [MaxInput] bytes
// of a longer text are read.
func (a *Analyzer) Analyze(text string) Result {
	truncated := false
	if len(text) > MaxInput {
		cut := MaxInput
		for cut > MaxInput-utf8.UTFMax && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text, truncated = text[:cut], true
	}
	sc := a.scratch.Get().(*scratch)
	var s string
	s, sc.segs, sc.norm = normalizeMapped(text, sc.segs, sc.norm)
	sc.units, sc.buf = a.lex.vocab.cut(s, false, sc.units[:0], sc.buf)
	st := state{contrastAt: -1}
	a.pass(s, sc.units, &st)
	r := a.finish(&st)
	// Cue offsets so far index the normalised text; give them in the message.
	for i := range r.Cues {
		c := &r.Cues[i]
		c.Start, c.End = sc.segs.span(c.Start, c.End)
		c.Text = text[c.Start:c.End]
	}
	if cap(sc.units) <= maxPooledUnits {
		a.scratch.Put(sc) // a huge message's buffers are left to the collector, not kept
	}
	r.Truncated = truncated
	return r
}

func (a *Analyzer) pass(s string, units []unit, st *state) {
	qLen, xLen, mixed := 0, 0, false
	var run [2]int // span of the current run of ? and !
	endRun := func() {
		if qLen >= 2 || (mixed && qLen >= 1) {
			term := strings.Repeat("?", min(qLen, maxRunShown))
			if mixed {
				term += "!"
			}
			if len(term) > len(st.qRun) {
				st.qRun, st.qSpan = term, run
			}
		}
		if xLen > st.exclaims {
			st.exclaims, st.xSpan = xLen, run
		}
		qLen, xLen, mixed = 0, 0, false
	}
	for _, u := range units {
		switch u.kind {
		case unitHan:
			st.han++
		case unitWord:
			if u.enWord {
				st.en++
			}
			st.latin = st.latin || u.latin
			if u.caps && st.caps == "" {
				st.caps, st.capsSpan = s[u.start:u.end], [2]int{int(u.start), int(u.end)}
			}
		}
	}
	for i := 0; i < len(units); {
		u := units[i]
		if u.kind == unitBreak && (u.id == '?' || u.id == '!') {
			if qLen+xLen == 0 {
				run[0] = int(u.start)
			}
			run[1] = int(u.end)
			if u.id == '?' {
				qLen++
				st.questions = true
				mixed = mixed || xLen > 0
			} else {
				xLen++
				mixed = mixed || qLen > 0
			}
		} else {
			endRun()
		}
		e, n := a.lex.longest(units[i:])
		if e < 0 {
			if u.kind == unitBreak {
				st.negLeft, st.modLeft = 0, 0
				st.modFactor, st.modTerms = 1, st.modTerms[:0]
			} else {
				st.negLeft--
				st.modLeft--
			}
			i++
			continue
		}
		a.apply(a.lex.entries[e], units[i:i+n], st)
		i += n
	}
	endRun()
}

func (a *Analyzer) apply(e Entry, units []unit, st *state) {
	switch e.Kind {
	case Negator:
		if st.negLeft > 0 {
			st.negLeft = 0 // a double negation cancels: 不是不满意
			return
		}
		st.negLeft, st.negTerm = negationWindow, e.Term
	case Intensifier, Diminisher:
		if st.modLeft <= 0 {
			st.modFactor, st.modTerms = 1, st.modTerms[:0]
		}
		st.modFactor *= e.Value
		st.modTerms = append(st.modTerms, e.Term+" ×"+strconv.FormatFloat(e.Value, 'g', 3, 64))
		st.modLeft = modifierWindow
	case Contrast:
		st.contrastAt, st.contrast = len(st.cues), e.Term
		st.negLeft, st.modLeft = 0, 0
	case Request:
		if st.request == "" {
			st.request = e.Term
		}
	case Sentiment, Escalation, Courtesy:
		c := Cue{Term: e.Term, Kind: e.Kind, Weight: e.Value, Contribution: e.Value}
		c.Start, c.End = int(units[0].start), int(units[len(units)-1].end)
		if k := units[0].kind; k == unitSymbol || k == unitBreak {
			// An emoji or emoticon is the writer's own comment on the clause, not a word the
			// clause negates or intensifies: "doesn't open :(" is not a denied frown.
			st.negLeft, st.modLeft = 0, 0
		}
		if st.modLeft > 0 && st.modFactor != 1 {
			c.Contribution *= st.modFactor
			c.Modifiers = append(c.Modifiers, st.modTerms...)
		}
		if st.negLeft > 0 {
			switch {
			case e.Kind == Escalation:
				c.Contribution = 0 // "我不会投诉" is no threat, nor praise
			case c.Contribution > 0:
				c.Contribution *= negatePositive
			default:
				c.Contribution *= negateNegative
			}
			c.Modifiers = append(c.Modifiers, "negated by "+st.negTerm)
		}
		for _, u := range units {
			if u.caps {
				c.Contribution *= capsFactor
				c.Modifiers = append(c.Modifiers, "capitals ×"+strconv.FormatFloat(capsFactor, 'g', 3, 64))
				break
			}
		}
		if e.Kind == Escalation && c.Contribution < 0 {
			st.escalation = true
		}
		if e.Kind == Courtesy {
			st.courtesy = append(st.courtesy, len(st.cues))
		}
		if c.Contribution != 0 || e.Kind != Sentiment {
			st.cues = append(st.cues, c)
		}
		st.negLeft, st.modLeft = 0, 0
		st.modFactor, st.modTerms = 1, st.modTerms[:0]
	}
}

// cue returns c located at span of the normalised text.
func (st *state) cue(c Cue, span [2]int) Cue {
	c.Start, c.End = span[0], span[1]
	return c
}

func (a *Analyzer) finish(st *state) Result {
	r := Result{Label: Neutral, Lang: LangUnd}
	switch {
	case st.han > 0 && st.en > 0:
		r.Lang = LangMixed
	case st.han > 0:
		r.Lang = LangZH
	case st.latin:
		r.Lang = LangEN
	}
	// A request or a question asserts nothing good: thanks in it are a polite formula, not
	// praise, and a positive term is what is asked for ("请尽快解决", "is it fixed?"), so it
	// weighs less. Negative terms keep their weight: a question can be a complaint.
	if st.request != "" || st.questions {
		why := "in a request (" + st.request + ")"
		if st.request == "" {
			why = "in a question"
		}
		for _, i := range st.courtesy {
			st.cues[i].Contribution = 0
			st.cues[i].Modifiers = append(st.cues[i].Modifiers, why)
		}
		for i := range st.cues {
			if c := &st.cues[i]; c.Kind == Sentiment && c.Contribution > 0 {
				c.Contribution *= inRequest
				c.Modifiers = append(c.Modifiers, why+" ×"+strconv.FormatFloat(inRequest, 'g', 3, 64))
			}
		}
	}
	if st.contrastAt >= 0 {
		for i := range st.cues {
			f, why := afterContrast, "after "+st.contrast
			if i < st.contrastAt {
				f, why = beforeContrast, "before "+st.contrast
			}
			if st.cues[i].Contribution != 0 {
				st.cues[i].Contribution *= f
				st.cues[i].Modifiers = append(st.cues[i].Modifiers, why+" ×"+strconv.FormatFloat(f, 'g', 3, 64))
			}
		}
	}
	if st.qRun != "" {
		st.cues = append(st.cues, st.cue(Cue{Term: st.qRun, Kind: Impatience, Weight: impatienceValue, Contribution: impatienceValue}, st.qSpan))
	}
	raw := 0.0
	for _, c := range st.cues {
		raw += c.Contribution
	}
	// Emphasis pushes further the way the message already leans; it creates no lean of its own.
	if raw != 0 {
		sign := math.Copysign(1, raw)
		if st.exclaims >= 2 {
			n := min(st.exclaims, exclaimMax+1) - 1
			v := sign * exclaimStep * float64(n)
			run := strings.Repeat("!", min(st.exclaims, maxRunShown))
			st.cues = append(st.cues, st.cue(Cue{Term: run, Kind: Emphasis, Weight: exclaimStep, Contribution: v}, st.xSpan))
			raw += v
		}
		if st.caps != "" {
			v := sign * capsEmphasis
			st.cues = append(st.cues, st.cue(Cue{Term: st.caps, Kind: Emphasis, Weight: capsEmphasis, Contribution: v}, st.capsSpan))
			raw += v
		}
	}
	r.Raw = raw
	r.Score = raw / math.Sqrt(raw*raw+alpha)
	r.Escalation = st.escalation
	r.Cues = st.cues
	switch {
	case r.Score <= a.neg:
		r.Label = Negative
		r.Confidence = 0.5 + 0.5*(a.neg-r.Score)/(1+a.neg)
	case r.Score >= a.pos:
		r.Label = Positive
		r.Confidence = 0.5 + 0.5*(r.Score-a.pos)/(1-a.pos)
	case len(st.cues) == 0:
		r.Confidence = 0.5
	case r.Score < 0:
		r.Confidence = 0.5 + 0.5*(1-r.Score/a.neg)
	default:
		r.Confidence = 0.5 + 0.5*(1-r.Score/a.pos)
	}
	return r
}
