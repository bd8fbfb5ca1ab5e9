// Package kb is the desk's knowledge base: the articles agents answer from and AI suggestions
// are grounded in, searchable in Chinese and English.
//
// Search is a bigram index in Postgres (a tsvector of the terms Terms makes, GIN-indexed; see
// store/kb.go). Chinese has no spaces, so Postgres' own text parsers see a whole sentence as one
// word, and pg_trgm ignores CJK characters under the C locale many servers run with (and needs an
// extension installed). Overlapping character bigrams — the CJK analyzers of Lucene and
// Elasticsearch do the same — match "重复扣款" in "银行卡被重复扣款了" whatever the locale, with no
// dictionary and no extension; English words are lower-cased and their plural -s dropped. Terms
// are made here, in Go, and handed to Postgres as literals (a tsvector with positions and weights,
// quoted tsquery lexemes), so the database's parser never splits them again.
package kb

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits of Terms.
const (
	// MaxTerms bounds the terms of one text (an article's body, a conversation's turns).
	MaxTerms = 1024
	// MaxTermBytes bounds one term (a longer word is cut).
	MaxTermBytes = 64
)

// stop are terms too common to tell articles apart.
var stop = map[string]bool{
	"您好": true, "你好": true, "请问": true, "谢谢": true, "一下": true, "我的": true, "什么": true, "怎么": true,
	"可以": true, "现在": true, "没有": true, "已经": true, "是不": true, "不是": true, "我们": true, "你们": true,
	"the": true, "an": true, "and": true, "or": true, "of": true, "to": true, "in": true, "on": true, "for": true,
	"is": true, "are": true, "was": true, "it": true, "my": true, "me": true, "you": true, "your": true, "we": true,
	"have": true, "has": true, "be": true, "this": true, "that": true, "with": true, "please": true, "hello": true,
	"hi": true, "can": true, "not": true, "do": true, "did": true, "at": true,
}

// cjk reports whether r is written without spaces between words (Han, kana, Hangul).
func cjk(r rune) bool {
	return unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul)
}

// Terms returns the search terms of s, each once, in order of first appearance: for every run of
// CJK characters its overlapping bigrams (a lone character stands for itself), and for every run
// of other letters and digits the word, lower-cased, a plural -s dropped. Common terms (stop
// words, 您好) and one-letter words are left out. At most MaxTerms terms of at most MaxTermBytes
// bytes each; never an empty one.
func Terms(s string) []string {
	var out []string
	seen := map[string]bool{}
	add := func(t string) {
		if len(t) > MaxTermBytes {
			t = t[:MaxTermBytes]
			for !utf8.ValidString(t) {
				t = t[:len(t)-1]
			}
		}
		if t == "" || stop[t] || seen[t] || len(out) >= MaxTerms {
			return
		}
		seen[t] = true
		out = append(out, t)
	}
	var run []rune // the current CJK run
	var word strings.Builder
	flushRun := func() {
		switch len(run) {
		case 0:
		case 1:
			add(string(run))
		default:
			for i := 0; i+1 < len(run); i++ {
				add(string(run[i : i+2]))
			}
		}
		run = run[:0]
	}
	flushWord := func() {
		w := word.String()
		word.Reset()
		if utf8.RuneCountInString(w) < 2 {
			return
		}
		if len(w) > 3 && strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") {
			w = w[:len(w)-1]
		}
		add(w)
	}
	for _, r := range s {
		switch {
		case cjk(r):
			flushWord()
			run = append(run, r)
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			flushRun()
			word.WriteString(string(unicode.ToLower(r)))
		default:
			flushRun()
			flushWord()
		}
	}
	flushRun()
	flushWord()
	return out
}
