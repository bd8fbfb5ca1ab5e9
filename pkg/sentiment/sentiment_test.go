package sentiment

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/text/unicode/norm"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDefaultLexiconParses(t *testing.T) {
	t.Parallel()
	if _, err := ParseLexicon(strings.NewReader(vaderLexicon)); err != nil {
		t.Fatal(err)
	}
	entries, err := ParseLexicon(strings.NewReader(defaultLexicon))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) < 400 {
		t.Errorf("default lexicon has %d entries, want the full file", len(entries))
	}
	seen := map[string]bool{}
	for _, e := range entries {
		key := strings.ToLower(normalize(e.Term))
		if seen[key] {
			t.Errorf("term %q twice in the default lexicon: the second silently replaces the first", e.Term)
		}
		seen[key] = true
	}
}

// findCue returns the cue for term, or fails.
func findCue(t *testing.T, r Result, term string) Cue {
	t.Helper()
	for _, c := range r.Cues {
		if c.Term == term {
			return c
		}
	}
	t.Fatalf("no cue %q in %s", term, cueString(r))
	return Cue{}
}

// contributes checks that term's cue contributes want.
func contributes(term string, want float64) func(*testing.T, Result) {
	return func(t *testing.T, r Result) {
		t.Helper()
		if c := findCue(t, r, term); math.Abs(c.Contribution-want) > 1e-9 {
			t.Errorf("%s contributes %v, want %v (%v)", term, c.Contribution, want, c.Modifiers)
		}
	}
}

func TestAnalyze(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name       string
		text       string
		label      Label
		lang       Lang
		escalation bool
		// check looks at the cues; nil for none.
		check func(t *testing.T, r Result)
	}{
		{name: "negation flips a positive term", text: "我对这次服务不满意", label: Negative, lang: LangZH,
			check: func(t *testing.T, r Result) { findCue(t, r, "不满意") }},
		{name: "negator within the window", text: "客服并没有解决我的问题", label: Negative, lang: LangZH,
			check: func(t *testing.T, r Result) {
				c := findCue(t, r, "解决")
				if c.Contribution >= 0 || !slices.Contains(c.Modifiers, "negated by 并没有") {
					t.Errorf("解决 not negated: %+v", c)
				}
			}},
		{name: "negation does not cross a clause break", text: "没有，服务很好", label: Positive, lang: LangZH},
		{name: "double negation cancels", text: "不是不满意", label: Positive, lang: LangZH},
		{name: "intensifier multiplies", text: "非常满意", label: Positive, lang: LangZH,
			check: contributes("满意", 2*1.8)},
		{name: "diminisher softens", text: "有点慢", label: Negative, lang: LangZH,
			check: contributes("慢", -1.2*0.6)},
		{name: "contrast: the later clause wins", text: "虽然快递很快，但是东西坏了", label: Negative, lang: LangZH},
		{name: "contrast in English", text: "The delivery was slow but the driver was really helpful", label: Positive, lang: LangEN},
		{name: "thanks in a request is not praise", text: "麻烦帮我查一下订单，谢谢", label: Neutral, lang: LangZH,
			check: contributes("谢谢", 0)},
		{name: "thanks for a fix is praise", text: "谢谢，问题解决了", label: Positive, lang: LangZH},
		{name: "complaint escalates", text: "我要投诉你们", label: Negative, lang: LangZH, escalation: true},
		{name: "hotline number escalates", text: "再不处理我就打12315", label: Negative, lang: LangZH, escalation: true},
		{name: "a resolution asked for is not praise", text: "请尽快帮我解决", label: Neutral, lang: LangZH,
			check: contributes("解决", 1.2*inRequest)},
		{name: "帮我 in a story is not a request", text: "师傅还帮我把旧机器搬走了，很负责", label: Positive, lang: LangZH},
		{name: "a question asserts nothing good", text: "Is it fixed now?", label: Neutral, lang: LangEN},
		{name: "a negative question keeps its weight", text: "为什么还没发货？", label: Negative, lang: LangZH},
		{name: "polite 贵行 is not 'expensive'", text: "请问贵行几点开门", label: Neutral, lang: LangZH},
		{name: "快点 is impatience, not speed", text: "快点处理", label: Negative, lang: LangZH},
		{name: "你最好 is a warning", text: "你最好给我一个解释", label: Negative, lang: LangZH},
		{name: "a customer's own boss is no escalation", text: "我领导让我来问一下发票", label: Neutral, lang: LangZH},
		{name: "an amount of 315 is no escalation", text: "订单金额315元", label: Neutral, lang: LangZH},
		{name: "a name is no escalation", text: "Hi, it's Sue, calling about my order", label: Neutral, lang: LangEN},
		{name: "a threat to sue is", text: "I will sue you", label: Negative, lang: LangEN, escalation: true},
		{name: "negated threat is no escalation", text: "我不投诉", label: Neutral, lang: LangZH},
		{name: "English escalation phrase across case and spaces", text: "I want to SPEAK to your  Manager", label: Negative, lang: LangEN, escalation: true},
		{name: "repeated question marks are impatience", text: "人呢？？", label: Negative, lang: LangZH,
			check: func(t *testing.T, r Result) { findCue(t, r, "??") }},
		{name: "exclamations push the existing lean", text: "太棒了！！！", label: Positive, lang: LangZH,
			check: func(t *testing.T, r Result) {
				if c := findCue(t, r, "!!!"); c.Contribution <= 0 {
					t.Errorf("!!! on a positive message contributes %v", c.Contribution)
				}
			}},
		{name: "exclamations alone are neutral", text: "收到！！", label: Neutral, lang: LangZH},
		{name: "full-width text is normalised", text: "ｔｈａｎｋ　ｙｏｕ，ｔｈａｔ　ｆｉｘｅｄ　ｉｔ！", label: Positive, lang: LangEN},
		{name: "capitals amplify", text: "This is UNACCEPTABLE", label: Negative, lang: LangEN,
			check: func(t *testing.T, r Result) {
				c := findCue(t, r, "unacceptable")
				if !slices.Contains(c.Modifiers, "capitals ×1.5") {
					t.Errorf("no capitals modifier: %+v", c)
				}
			}},
		{name: "contraction negates", text: "I'm not happy and it doesn't work", label: Negative, lang: LangEN},
		{name: "curly apostrophe", text: "I don’t like it", label: Neutral, lang: LangEN},
		{name: "not bad is mildly positive", text: "not bad", label: Positive, lang: LangEN},
		{name: "emoji with skin tone and variation selector", text: "👍🏻", label: Positive, lang: LangUnd},
		{name: "angry emoji", text: "包裹到现在都没收到😡", label: Negative, lang: LangZH},
		{name: "emoticons are not negated", text: "the link doesn't open :(", label: Negative, lang: LangEN},
		{name: "traditional characters read as simplified", text: "我要投訴，服務太差勁了", label: Negative, lang: LangZH, escalation: true},
		{name: "traditional thanks in a request", text: "麻煩幫我查一下，謝謝", label: Neutral, lang: LangZH},
		{name: "mixed language", text: "我要 cancel 这个 order，太慢了", label: Negative, lang: LangMixed},
		{name: "acronym inside Chinese stays Chinese", text: "我是在APP上买的", label: Neutral, lang: LangZH},
		{name: "empty", text: "", label: Neutral, lang: LangUnd},
		{name: "invalid UTF-8", text: "\xff\xfe差\xff", label: Negative, lang: LangZH},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := Analyze(tt.text)
			if r.Label != tt.label || r.Lang != tt.lang || r.Escalation != tt.escalation {
				t.Errorf("Analyze(%q) = %s %s escalation=%v (score %.3f) %s, want %s %s escalation=%v",
					tt.text, r.Label, r.Lang, r.Escalation, r.Score, cueString(r), tt.label, tt.lang, tt.escalation)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

func TestLongInputs(t *testing.T) {
	t.Parallel()
	for _, text := range []string{
		strings.Repeat("?", 1<<20),
		strings.Repeat("!", 1<<20),
		strings.Repeat("不满意，", 1<<16),
		strings.Repeat("a", 1<<20),
	} {
		start := time.Now()
		r := Analyze(text)
		if d := time.Since(start); d > time.Second {
			t.Errorf("%d bytes took %v: the input bound does not hold", len(text), d)
		}
		if !r.Truncated {
			t.Errorf("%d bytes not marked Truncated", len(text))
		}
		for _, c := range r.Cues {
			if c.Kind != Sentiment && len(c.Term) > maxRunShown+1 {
				t.Errorf("punctuation cue term of %d bytes", len(c.Term))
			}
		}
	}
	// The cut falls on a rune boundary: a multi-byte character straddling MaxInput is dropped
	// whole, not read as a broken byte.
	text := strings.Repeat("a", MaxInput-1) + "差"
	if r := Analyze(text); !r.Truncated || len(r.Cues) != 0 {
		t.Errorf("straddling rune: truncated=%v cues=%s", r.Truncated, cueString(r))
	}
	if r := Analyze(strings.Repeat("a", MaxInput-3) + "差"); r.Truncated || len(r.Cues) != 1 {
		t.Errorf("text of exactly MaxInput bytes: truncated=%v cues=%s", r.Truncated, cueString(r))
	}
}

func TestResultJSON(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(Analyze("我要投诉！！"))
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{`"label":"negative"`, `"lang":"zh"`, `"escalation":true`, `"term":"投诉"`, `"kind":"escalation"`, `"contribution":-3`} {
		if !strings.Contains(got, want) {
			t.Errorf("JSON %s lacks %s", got, want)
		}
	}
	if strings.Contains(got, "truncated") {
		t.Errorf("JSON %s shows truncated for a short message", got)
	}
}

func TestCueSpans(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		text string
		want map[string]string // cue term -> the message text it points at
	}{
		{"客服态度很差，我要投诉！！！ This is UNACCEPTABLE??", map[string]string{
			"很差": "很差", "投诉": "投诉", "!!!": "！！！", "??": "??", "unacceptable": "UNACCEPTABLE"}},
		{"我要投訴，ｔｈａｎｋｓ　ｆｏｒ　ｎｏｔｈｉｎｇ", map[string]string{
			"投诉": "投訴", "thanks for nothing": "ｔｈａｎｋｓ　ｆｏｒ　ｎｏｔｈｉｎｇ"}},
		{"ﬁne…", map[string]string{"fine": "ﬁne"}},
	} {
		r := Analyze(tt.text)
		for _, c := range r.Cues {
			if tt.text[c.Start:c.End] != c.Text {
				t.Errorf("%q: cue %q: message[%d:%d] = %q, Text %q", tt.text, c.Term, c.Start, c.End, tt.text[c.Start:c.End], c.Text)
			}
			if w, ok := tt.want[c.Term]; ok {
				delete(tt.want, c.Term)
				if c.Text != w {
					t.Errorf("%q: cue %q points at %q, want %q", tt.text, c.Term, c.Text, w)
				}
			}
		}
		if len(tt.want) > 0 {
			t.Errorf("%q: no cues for %v in %s", tt.text, tt.want, cueString(r))
		}
	}
}

// TestConcurrentAnalyze checks that one Analyzer serves many goroutines (its scratch comes
// from a sync.Pool) with the results of serial calls. Run with -race to mean something.
func TestConcurrentAnalyze(t *testing.T) {
	t.Parallel()
	samples := loadLabelled(t)
	want := make([]Result, len(samples))
	for i, s := range samples {
		want[i] = Analyze(s.text)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range samples {
				j := (i + g*len(samples)/4) % len(samples)
				if got := Analyze(samples[j].text); !reflect.DeepEqual(got, want[j]) {
					t.Errorf("concurrent result for %q differs from the serial one", samples[j].text)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestConfidence(t *testing.T) {
	t.Parallel()
	if r := Analyze("订单号是多少"); r.Confidence != 0.5 || len(r.Cues) != 0 {
		t.Errorf("no cue: confidence %v, cues %v; want 0.5 and none", r.Confidence, r.Cues)
	}
	mild, strong := Analyze("有点慢，失望"), Analyze("太差劲了，我要投诉！！")
	if !(strong.Confidence > mild.Confidence) {
		t.Errorf("confidence of %q (%v) not above %q (%v)", "太差劲了，我要投诉！！", strong.Confidence, "有点慢，失望", mild.Confidence)
	}
}

func TestAnalyzerOptions(t *testing.T) {
	t.Parallel()

	t.Run("tenant entries add and override", func(t *testing.T) {
		t.Parallel()
		a, err := New(WithEntries(
			Entry{Term: "退款", Kind: Escalation, Value: -2},
			Entry{Term: "投诉", Kind: Sentiment, Value: 0}, // this tenant's customers say 投诉 for any question
		))
		if err != nil {
			t.Fatal(err)
		}
		if r := a.Analyze("我要退款"); !r.Escalation || r.Label != Negative {
			t.Errorf("added escalation term: %+v", r)
		}
		if r := a.Analyze("投诉"); r.Escalation || r.Label != Neutral {
			t.Errorf("neutralised term: %+v", r)
		}
		if r := Analyze("我要退款"); r.Escalation {
			t.Error("a tenant's entries leaked into the default analyser")
		}
	})

	t.Run("lexicon file", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "tenant.tsv")
		if err := os.WriteFile(path, []byte("# tenant terms\nchargeback\tescalation\t-3\nsmashing\tsentiment\t2.5\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		a, err := New(WithLexiconFile(path))
		if err != nil {
			t.Fatal(err)
		}
		if r := a.Analyze("That was smashing"); r.Label != Positive {
			t.Errorf("tenant term: %s %s", r.Label, cueString(r))
		}
	})

	t.Run("without the default lexicon", func(t *testing.T) {
		t.Parallel()
		a, err := New(WithoutDefaultLexicon(), WithEntries(Entry{Term: "棒", Kind: Sentiment, Value: 2}))
		if err != nil {
			t.Fatal(err)
		}
		if r := a.Analyze("太棒了，满意"); len(r.Cues) != 1 || r.Cues[0].Contribution != 2 {
			t.Errorf("only 棒 should count, unintensified: %s", cueString(r))
		}
	})

	t.Run("errors", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name string
			opt  Option
			want error
		}{
			{"bad kind", WithLexicon(strings.NewReader("好\tgood\t1\n")), ErrInvalidLexicon},
			{"value out of range", WithLexicon(strings.NewReader("好\tsentiment\t9\n")), ErrInvalidLexicon},
			{"value not a number", WithLexicon(strings.NewReader("好\tsentiment\tx\n")), ErrInvalidLexicon},
			{"negator with a value", WithLexicon(strings.NewReader("不\tnegator\t1\n")), ErrInvalidLexicon},
			{"missing kind", WithLexicon(strings.NewReader("好\n")), ErrInvalidLexicon},
			{"term of ignorable marks only", WithEntries(Entry{Term: "\ufe0f", Kind: Sentiment, Value: 1}), ErrInvalidLexicon},
			{"missing file", WithLexiconFile(filepath.Join(t.TempDir(), "none.tsv")), ErrInvalidLexicon},
			{"thresholds reversed", WithThresholds(0.3, -0.3), ErrInvalidOption},
		}
		for _, tt := range tests {
			if _, err := New(tt.opt); !errors.Is(err, tt.want) {
				t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
			}
		}
		_, err := New(WithLexicon(strings.NewReader("# c\n好\tsentiment\t1\n坏\tsentiment\n差\tbad\t1\n")))
		if err == nil || !strings.Contains(err.Error(), "line 4") {
			t.Errorf("error does not name line 4: %v", err)
		}
	})

	t.Run("thresholds", func(t *testing.T) {
		t.Parallel()
		a, err := New(WithThresholds(-0.9, 0.9))
		if err != nil {
			t.Fatal(err)
		}
		if r := a.Analyze("失望"); r.Label != Neutral {
			t.Errorf("-0.71 with threshold -0.9: %s", r.Label)
		}
	})
}

// checkInvariants holds for every text: what FuzzAnalyze checks.
func checkInvariants(t *testing.T, a *Analyzer, text string) {
	r := a.Analyze(text)
	if math.IsNaN(r.Score) || r.Score < -1 || r.Score > 1 {
		t.Fatalf("score %v out of [-1, 1] for %q", r.Score, text)
	}
	if math.IsNaN(r.Confidence) || r.Confidence < 0 || r.Confidence > 1 {
		t.Fatalf("confidence %v out of [0, 1] for %q", r.Confidence, text)
	}
	sum := 0.0
	for _, c := range r.Cues {
		sum += c.Contribution
	}
	if math.Abs(sum-r.Raw) > 1e-9 {
		t.Fatalf("cues sum to %v, Raw is %v, for %q", sum, r.Raw, text)
	}
	want := Neutral
	switch {
	case r.Score <= a.neg:
		want = Negative
	case r.Score >= a.pos:
		want = Positive
	}
	if r.Label != want {
		t.Fatalf("label %s for score %v of %q", r.Label, r.Score, text)
	}
	switch r.Lang {
	case LangZH, LangEN, LangMixed, LangUnd:
	default:
		t.Fatalf("lang %q for %q", r.Lang, text)
	}
	for _, c := range r.Cues {
		if c.Start < 0 || c.End < c.Start || c.End > len(text) || text[c.Start:c.End] != c.Text {
			t.Fatalf("cue %q at [%d:%d] does not index %q (Text %q)", c.Term, c.Start, c.End, text, c.Text)
		}
	}
	if n, _, _ := normalizeMapped(text, nil, nil); n != norm.NFKC.String(text) {
		t.Fatalf("segment-wise NFKC of %q is %q, not %q", text, n, norm.NFKC.String(text))
	}
	if again := a.Analyze(text); !reflect.DeepEqual(r, again) {
		t.Fatalf("not deterministic for %q:\n%+v\n%+v", text, r, again)
	}
}

func FuzzAnalyze(f *testing.F) {
	for _, s := range loadLabelled(f) {
		f.Add(s.text)
	}
	for _, s := range []string{
		"", " ", "！！！？？？", "?!?!", "不不不不不", "not not not happy", "但是但是", "but but",
		"\xff\xfe\xfd", "\u200d\ufe0f", "👍🏻👍🏻👍🏻", "ＡＢＣ", "can’t’", "'''", "a'b'c", "🙏🙏",
		strings.Repeat("非常", 200) + "满意", strings.Repeat("太差了！", 100),
		"ﬁne", "①②③", "T_T T_T", ":(:(:(", "1231512315",
	} {
		f.Add(s)
	}
	a := defaultAnalyzer()
	f.Fuzz(func(t *testing.T, text string) {
		checkInvariants(t, a, text)
	})
}

// TestVersion: the version names the lexicon and thresholds: stable for the default, changed by
// a tenant entry or other thresholds.
func TestVersion(t *testing.T) {
	t.Parallel()
	a, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if a.Version() != Version() || Default().Version() != Version() || len(Version()) != len("lexicon-")+12 {
		t.Fatalf("version %q, default %q", a.Version(), Version())
	}
	b, _ := New(WithEntries(Entry{Term: "chargeback", Kind: Escalation, Value: -3}))
	c, _ := New(WithThresholds(-0.2, 0.3))
	if b.Version() == a.Version() || c.Version() == a.Version() {
		t.Fatalf("versions %q %q %q", a.Version(), b.Version(), c.Version())
	}
}
