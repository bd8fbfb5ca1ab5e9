package sentiment

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
	"text/tabwriter"
)

// sample is one row of testdata/labelled.tsv.
type sample struct {
	split, lang, domain, text string
	label                     Label
	line                      int
}

func loadLabelled(tb testing.TB) []sample {
	tb.Helper()
	f, err := os.Open("testdata/labelled.tsv")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	labels := map[string]Label{"neg": Negative, "neu": Neutral, "pos": Positive}
	var out []sample
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		p := strings.Split(line, "\t")
		if len(p) != 5 {
			tb.Fatalf("labelled.tsv:%d: %d fields, want 5", n, len(p))
		}
		l, ok := labels[p[2]]
		if !ok || (p[0] != "tune" && p[0] != "heldout") || (p[1] != "zh" && p[1] != "en" && p[1] != "mixed") {
			tb.Fatalf("labelled.tsv:%d: bad split, lang or label: %q", n, line)
		}
		out = append(out, sample{split: p[0], lang: p[1], label: l, domain: p[3], text: p[4], line: n})
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// classMetrics are precision, recall and F1 of one class over some samples.
type classMetrics struct {
	tp, fp, fn, n int
}

func (m classMetrics) precision() float64 { return ratio(m.tp, m.tp+m.fp) }
func (m classMetrics) recall() float64    { return ratio(m.tp, m.tp+m.fn) }
func (m classMetrics) f1() float64 {
	p, r := m.precision(), m.recall()
	if p+r == 0 {
		return 0
	}
	return 2 * p * r / (p + r)
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

type evaluation struct {
	classes map[Label]*classMetrics
	correct int
	total   int
}

func (e evaluation) macroF1() float64 {
	return (e.classes[Negative].f1() + e.classes[Neutral].f1() + e.classes[Positive].f1()) / 3
}

func evaluate(a *Analyzer, samples []sample) evaluation {
	e := evaluation{classes: map[Label]*classMetrics{Negative: {}, Neutral: {}, Positive: {}}}
	for _, s := range samples {
		got := a.Analyze(s.text).Label
		e.total++
		e.classes[s.label].n++
		if got == s.label {
			e.correct++
			e.classes[got].tp++
			continue
		}
		e.classes[got].fp++
		e.classes[s.label].fn++
	}
	return e
}

func filter(samples []sample, keep func(sample) bool) []sample {
	var out []sample
	for _, s := range samples {
		if keep(s) {
			out = append(out, s)
		}
	}
	return out
}

// Floors the labelled set must keep, a few rows below the figures measured when they were set
// (tune: negative recall 1.00, macro F1 1.00; held-out: negative precision 0.93, negative
// recall 0.35, macro F1 0.65), so they fail on a regression of more than a row or two.
//
// The held-out floors are low because the held-out figures are honest: the hand-written lexicon
// is barred from every term that only held-out rows contain (TestLexiconHeldOut), so a
// held-out message is read through the tune rows' vocabulary and VADER's general English
// words. What the held-out split shows is that the analyser rarely raises a false negative
// (precision) but misses most negatives worded unlike the tune rows, in Chinese above all:
// recall grows with the lexicon, not with the rules.
const (
	tuneNegRecallFloor       = 0.9
	tuneMacroF1Floor         = 0.9
	heldoutNegPrecisionFloor = 0.85
	heldoutNegRecallFloor    = 0.3
	heldoutMacroF1Floor      = 0.6
	langFloor                = 0.95
)

// TestLabelledSet measures the default Analyzer on testdata/labelled.tsv and prints precision,
// recall and F1 per class and language for both splits. The lexicon was tuned on the tune split
// only; for the held-out split only aggregates are printed, never its misclassified rows, so it
// cannot be tuned against by reading this test's output.
func TestLabelledSet(t *testing.T) {
	t.Parallel()
	samples := loadLabelled(t)
	count := func(keep func(sample) bool) int { return len(filter(samples, keep)) }
	if n := len(samples); n < 300 {
		t.Errorf("labelled set has %d rows, want >= 300", n)
	}
	if n := count(func(s sample) bool { return s.lang == "zh" }); n < 150 {
		t.Errorf("labelled set has %d Chinese rows, want >= 150", n)
	}
	if n := count(func(s sample) bool { return s.lang == "en" }); n < 120 {
		t.Errorf("labelled set has %d English rows, want >= 120", n)
	}
	for _, l := range []Label{Negative, Neutral, Positive} {
		if n := count(func(s sample) bool { return s.label == l }); n < len(samples)/4 {
			t.Errorf("labelled set has %d %s rows of %d: not balanced", n, l, len(samples))
		}
	}

	a := defaultAnalyzer()
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "split\tlang\tn\tacc\tneg P\tneg R\tneg F1\tneu P\tneu R\tneu F1\tpos P\tpos R\tpos F1\tmacro F1\t")
	results := map[string]evaluation{}
	for _, split := range []string{"tune", "heldout"} {
		for _, lang := range []string{"zh", "en", "mixed", "all"} {
			e := evaluate(a, filter(samples, func(s sample) bool {
				return s.split == split && (lang == "all" || s.lang == lang)
			}))
			results[split+"/"+lang] = e
			fmt.Fprintf(w, "%s\t%s\t%d\t%.2f\t", split, lang, e.total, ratio(e.correct, e.total))
			for _, l := range []Label{Negative, Neutral, Positive} {
				c := e.classes[l]
				fmt.Fprintf(w, "%.2f\t%.2f\t%.2f\t", c.precision(), c.recall(), c.f1())
			}
			fmt.Fprintf(w, "%.2f\t\n", e.macroF1())
		}
	}
	w.Flush()
	t.Log("\n" + b.String())

	// Language detection, and whether Confidence means anything: accuracy above and below 0.75.
	langOK := 0
	var hi, lo [2]int // correct, total
	for _, s := range samples {
		r := a.Analyze(s.text)
		if string(r.Lang) == s.lang {
			langOK++
		}
		if s.split != "heldout" {
			continue
		}
		b := &lo
		if r.Confidence >= 0.75 {
			b = &hi
		}
		b[1]++
		if r.Label == s.label {
			b[0]++
		}
	}
	t.Logf("language detected right on %d of %d rows (%.2f)", langOK, len(samples), ratio(langOK, len(samples)))
	t.Logf("held-out accuracy when Confidence >= 0.75: %.2f of %d rows; below: %.2f of %d rows",
		ratio(hi[0], hi[1]), hi[1], ratio(lo[0], lo[1]), lo[1])
	if ratio(hi[0], hi[1]) <= ratio(lo[0], lo[1]) {
		t.Error("held-out accuracy is no better when Confidence >= 0.75: Confidence says nothing")
	}
	if r := ratio(langOK, len(samples)); r < langFloor {
		t.Errorf("language detection %.2f, floor %.2f", r, langFloor)
	}

	for _, s := range filter(samples, func(s sample) bool { return s.split == "tune" }) {
		if r := a.Analyze(s.text); r.Label != s.label {
			t.Logf("tune miss, labelled.tsv:%d want %s got %s (%.2f): %s %s", s.line, s.label, r.Label, r.Score, s.text, cueString(r))
		}
	}

	tune, held := results["tune/all"], results["heldout/all"]
	if r := tune.classes[Negative].recall(); r < tuneNegRecallFloor {
		t.Errorf("tune split: negative recall %.2f, floor %.2f", r, tuneNegRecallFloor)
	}
	if f := tune.macroF1(); f < tuneMacroF1Floor {
		t.Errorf("tune split: macro F1 %.2f, floor %.2f", f, tuneMacroF1Floor)
	}
	if p := held.classes[Negative].precision(); p < heldoutNegPrecisionFloor {
		t.Errorf("held-out split: negative precision %.2f, floor %.2f", p, heldoutNegPrecisionFloor)
	}
	if r := held.classes[Negative].recall(); r < heldoutNegRecallFloor {
		t.Errorf("held-out split: negative recall %.2f, floor %.2f", r, heldoutNegRecallFloor)
	}
	if f := held.macroF1(); f < heldoutMacroF1Floor {
		t.Errorf("held-out split: macro F1 %.2f, floor %.2f", f, heldoutMacroF1Floor)
	}
}

func cueString(r Result) string {
	var b strings.Builder
	for _, c := range r.Cues {
		fmt.Fprintf(&b, "[%s %s %+.2f %v]", c.Kind, c.Term, c.Contribution, c.Modifiers)
	}
	return b.String()
}

// TestLexiconHeldOut enforces the held-out rule of lexicon.tsv: every sentiment or escalation
// term of the default lexicon that matches a held-out row also matches a tune row, so no term
// exists only because of the held-out split. Terms taken unchanged from lexicon_vader.tsv are
// exempt: VADER's authors chose them, not against this labelled set.
func TestLexiconHeldOut(t *testing.T) {
	t.Parallel()
	a := defaultAnalyzer()
	vader, err := ParseLexicon(strings.NewReader(vaderLexicon))
	if err != nil {
		t.Fatal(err)
	}
	fromVader := map[Entry]bool{}
	for _, e := range vader {
		fromVader[e] = true
	}
	matched := map[string]map[string]bool{"tune": {}, "heldout": {}}
	for _, s := range loadLabelled(t) {
		units, _ := a.lex.vocab.cut(normalize(s.text), false, nil, nil)
		for i := range units {
			node := int32(0)
			for _, u := range units[i:] {
				next, ok := a.lex.edges[edge{node, u.id}]
				if !ok {
					break
				}
				node = next
				if e := a.lex.entry[node]; e >= 0 {
					matched[s.split][a.lex.entries[e].Term] = true
				}
			}
		}
	}
	for _, e := range a.lex.entries {
		if (e.Kind == Sentiment || e.Kind == Escalation) && matched["heldout"][e.Term] && !matched["tune"][e.Term] && !fromVader[e] {
			t.Errorf("lexicon term %q (%s) matches held-out rows only: the held-out split is not held out", e.Term, e.Kind)
		}
	}
}
