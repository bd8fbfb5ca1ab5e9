package salesforce

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrUnquotable is returned by Quote for a value SOQL cannot carry in a string literal: invalid
// UTF-8, or a control character other than the escapable \n \r \t \b \f.
var ErrUnquotable = errors.New("salesforce: value cannot be a SOQL string literal")

// Escape escapes s for the inside of a SOQL string literal, using the documented escape
// sequences: \\ \' \" \n \r \t \b \f. It returns ErrUnquotable for invalid UTF-8 or any other
// control character. LIKE wildcards are not escaped: only = and IN comparisons are built here.
func Escape(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("%w: not valid UTF-8", ErrUnquotable)
	}
	var b strings.Builder
	b.Grow(len(s) + 2)
	for _, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '\'':
			b.WriteString(`\'`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			if r < 0x20 || r == 0x7f {
				return "", fmt.Errorf("%w: control character %U", ErrUnquotable, r)
			}
			b.WriteRune(r)
		}
	}
	return b.String(), nil
}

// Quote returns s as a SOQL string literal: '...' with Escape applied.
func Quote(s string) (string, error) {
	e, err := Escape(s)
	if err != nil {
		return "", err
	}
	return "'" + e + "'", nil
}

// Unescape decodes the inside of a SOQL string literal (the text between the quotes). like
// allows \_ and \% (valid only in a LIKE pattern, where they stand for a literal _ and %; they
// come back as the two characters \_ and \% so that the pattern compiler can tell them from
// wildcards). Any other backslash sequence is an error, as in SOQL.
func Unescape(raw string, like bool) (string, error) {
	if !strings.Contains(raw, `\`) {
		return raw, nil
	}
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		if i+1 >= len(raw) {
			return "", errors.New("string literal ends in a lone backslash")
		}
		i++
		switch raw[i] {
		case '\\', '\'', '"':
			b.WriteByte(raw[i])
		case 'n', 'N':
			b.WriteByte('\n')
		case 'r', 'R':
			b.WriteByte('\r')
		case 't', 'T':
			b.WriteByte('\t')
		case 'b', 'B':
			b.WriteByte('\b')
		case 'f', 'F':
			b.WriteByte('\f')
		case '_', '%':
			if !like {
				return "", fmt.Errorf(`invalid escape sequence \%c outside a LIKE pattern`, raw[i])
			}
			b.WriteByte('\\')
			b.WriteByte(raw[i])
		default:
			return "", fmt.Errorf(`invalid escape sequence \%c`, raw[i])
		}
	}
	return b.String(), nil
}

// SOQLError is a query the parser rejects; Salesforce answers it with MALFORMED_QUERY.
type SOQLError struct {
	Pos int    // byte offset in the query
	Msg string // what is wrong
}

func (e *SOQLError) Error() string { return fmt.Sprintf("SOQL at %d: %s", e.Pos, e.Msg) }

// Is makes errors.Is(err, ErrMalformedQuery) hold for parse errors.
func (e *SOQLError) Is(target error) bool { return target == error(ErrMalformedQuery) }

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tString
	tNumber
	tOp
	tLParen
	tRParen
	tComma
)

type token struct {
	kind tokKind
	text string // identifier, operator, number; for tString the raw text between the quotes
	pos  int
}

// lex splits a SOQL query into tokens.
func lex(q string) ([]token, error) {
	var out []token
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			out = append(out, token{tLParen, "(", i})
			i++
		case c == ')':
			out = append(out, token{tRParen, ")", i})
			i++
		case c == ',':
			out = append(out, token{tComma, ",", i})
			i++
		case c == '\'':
			j := i + 1
			for ; j < len(q); j++ {
				if q[j] == '\\' {
					j++
					continue
				}
				if q[j] == '\'' {
					break
				}
			}
			if j >= len(q) {
				return nil, &SOQLError{i, "unterminated string literal"}
			}
			out = append(out, token{tString, q[i+1 : j], i})
			i = j + 1
		case c == '=' || c == '<' || c == '>' || c == '!':
			start, op := i, string(c)
			if i+1 < len(q) && (q[i+1] == '=' || (c == '<' && q[i+1] == '>')) {
				op += string(q[i+1])
			}
			if op == "!" {
				return nil, &SOQLError{i, "unexpected token: '!'"}
			}
			i += len(op)
			if op == "<>" {
				op = "!="
			}
			out = append(out, token{tOp, op, start})
		case c == '-' || (c >= '0' && c <= '9'):
			j := i + 1
			for j < len(q) && (q[j] >= '0' && q[j] <= '9' || q[j] == '.') {
				j++
			}
			if _, err := strconv.ParseFloat(q[i:j], 64); err != nil {
				return nil, &SOQLError{i, fmt.Sprintf("unexpected token: '%s'", q[i:j])}
			}
			out = append(out, token{tNumber, q[i:j], i})
			i = j
		case isIdentStart(c):
			j := i + 1
			for j < len(q) && (isIdentStart(q[j]) || q[j] >= '0' && q[j] <= '9' || q[j] == '.') {
				j++
			}
			out = append(out, token{tIdent, q[i:j], i})
			i = j
		default:
			r, _ := utf8.DecodeRuneInString(q[i:])
			return nil, &SOQLError{i, fmt.Sprintf("unexpected token: '%c'", r)}
		}
	}
	return append(out, token{tEOF, "", len(q)}), nil
}

func isIdentStart(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' }

var fieldRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*$`)

// ValidFieldName reports whether f is a field path SOQL accepts ("Email", "Account.Name",
// "Member_Number__c"). The connector checks configured field names with it before putting them
// into a query.
func ValidFieldName(f string) bool {
	return len(f) <= 255 && fieldRE.MatchString(f) && !strings.Contains(f, "__c__") && !strings.HasSuffix(f, "_")
}

// ValueKind says what a literal in a condition is.
type ValueKind int

// Literal kinds.
const (
	ValString ValueKind = iota
	ValNumber
	ValNull
	ValBool
)

// Value is a literal of a condition. For strings, Raw is the text between the quotes and Str its
// decoded value (for LIKE patterns \_ and \% stay escaped, see Unescape).
type Value struct {
	Kind ValueKind
	Raw  string
	Str  string
}

// Expr is a WHERE condition: *Or, *And, *Not, *Cmp or *In.
type Expr interface{ expr() }

// Or holds when any term holds.
type Or struct{ Terms []Expr }

// And holds when every term holds.
type And struct{ Terms []Expr }

// Not negates X.
type Not struct{ X Expr }

// Cmp compares a field with a value: Op is one of = != < <= > >= LIKE.
type Cmp struct {
	Field string
	Op    string
	Value Value
}

// In holds when the field equals one of Values (or none, with Not set: NOT IN).
type In struct {
	Field  string
	Not    bool
	Values []Value
}

func (*Or) expr()  {}
func (*And) expr() {}
func (*Not) expr() {}
func (*Cmp) expr() {}
func (*In) expr()  {}

// Order is one ORDER BY item.
type Order struct {
	Field string
	Desc  bool
}

// Query is a parsed SOQL query of the supported subset:
//
//	SELECT field, ... FROM object [WHERE cond] [ORDER BY field [ASC|DESC], ...] [LIMIT n]
//
// where cond combines, with AND, OR, NOT and parentheses, comparisons (= != <> < <= > >= LIKE)
// and [NOT] IN lists of string, number, boolean and null literals. Keywords are
// case-insensitive, as in SOQL.
type Query struct {
	Fields  []string
	Object  string
	Where   Expr // nil without WHERE
	OrderBy []Order
	Limit   int // 0 without LIMIT
}

// MaxQueryLen is the longest query accepted (Salesforce's limit is 100,000 characters).
const MaxQueryLen = 100000

type parser struct {
	toks []token
	i    int
}

// ParseSOQL parses q. Errors are *SOQLError (errors.Is(err, ErrMalformedQuery) holds).
func ParseSOQL(q string) (*Query, error) {
	if len(q) > MaxQueryLen {
		return nil, &SOQLError{MaxQueryLen, "query is longer than 100000 characters"}
	}
	toks, err := lex(q)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	return p.query()
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) isKw(kw string) bool {
	t := p.peek()
	return t.kind == tIdent && strings.EqualFold(t.text, kw)
}

func (p *parser) expectKw(kw string) error {
	if !p.isKw(kw) {
		return p.unexpected("expecting " + kw)
	}
	p.next()
	return nil
}

func (p *parser) unexpected(why string) error {
	t := p.peek()
	if t.kind == tEOF {
		return &SOQLError{t.pos, "unexpected end of query, " + why}
	}
	return &SOQLError{t.pos, fmt.Sprintf("unexpected token: '%s', %s", t.text, why)}
}

var reserved = map[string]bool{"select": true, "from": true, "where": true, "and": true, "or": true, "not": true,
	"in": true, "like": true, "order": true, "by": true, "limit": true, "asc": true, "desc": true, "null": true,
	"true": true, "false": true, "nulls": true, "first": true, "last": true, "offset": true, "group": true, "having": true}

func (p *parser) field() (string, error) {
	t := p.peek()
	if t.kind != tIdent || reserved[strings.ToLower(t.text)] || !ValidFieldName(t.text) {
		return "", p.unexpected("expecting a field name")
	}
	p.next()
	return t.text, nil
}

func (p *parser) query() (*Query, error) {
	q := &Query{}
	if err := p.expectKw("SELECT"); err != nil {
		return nil, err
	}
	for {
		f, err := p.field()
		if err != nil {
			return nil, err
		}
		q.Fields = append(q.Fields, f)
		if p.peek().kind != tComma {
			break
		}
		p.next()
	}
	if err := p.expectKw("FROM"); err != nil {
		return nil, err
	}
	obj, err := p.field()
	if err != nil || strings.Contains(obj, ".") {
		return nil, &SOQLError{p.peek().pos, "expecting an object name after FROM"}
	}
	q.Object = obj
	if p.isKw("WHERE") {
		p.next()
		if q.Where, err = p.or(); err != nil {
			return nil, err
		}
	}
	if p.isKw("ORDER") {
		p.next()
		if err := p.expectKw("BY"); err != nil {
			return nil, err
		}
		for {
			f, err := p.field()
			if err != nil {
				return nil, err
			}
			o := Order{Field: f}
			if p.isKw("ASC") {
				p.next()
			} else if p.isKw("DESC") {
				p.next()
				o.Desc = true
			}
			if p.isKw("NULLS") {
				p.next()
				if !p.isKw("FIRST") && !p.isKw("LAST") {
					return nil, p.unexpected("expecting FIRST or LAST")
				}
				p.next()
			}
			q.OrderBy = append(q.OrderBy, o)
			if p.peek().kind != tComma {
				break
			}
			p.next()
		}
	}
	if p.isKw("LIMIT") {
		p.next()
		t := p.next()
		n, err := strconv.Atoi(t.text)
		if t.kind != tNumber || err != nil || n < 0 {
			return nil, &SOQLError{t.pos, "LIMIT needs a non-negative integer"}
		}
		q.Limit = n
	}
	if p.peek().kind != tEOF {
		return nil, p.unexpected("expecting end of query")
	}
	return q, nil
}

func (p *parser) or() (Expr, error) {
	x, err := p.and()
	if err != nil {
		return nil, err
	}
	if !p.isKw("OR") {
		return x, nil
	}
	or := &Or{Terms: []Expr{x}}
	for p.isKw("OR") {
		p.next()
		y, err := p.and()
		if err != nil {
			return nil, err
		}
		or.Terms = append(or.Terms, y)
	}
	return or, nil
}

func (p *parser) and() (Expr, error) {
	x, err := p.factor()
	if err != nil {
		return nil, err
	}
	if !p.isKw("AND") {
		return x, nil
	}
	and := &And{Terms: []Expr{x}}
	for p.isKw("AND") {
		p.next()
		y, err := p.factor()
		if err != nil {
			return nil, err
		}
		and.Terms = append(and.Terms, y)
	}
	return and, nil
}

func (p *parser) factor() (Expr, error) {
	switch {
	case p.peek().kind == tLParen:
		p.next()
		x, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.peek().kind != tRParen {
			return nil, p.unexpected("expecting ')'")
		}
		p.next()
		return x, nil
	case p.isKw("NOT"):
		p.next()
		x, err := p.factor()
		if err != nil {
			return nil, err
		}
		return &Not{X: x}, nil
	}
	f, err := p.field()
	if err != nil {
		return nil, err
	}
	switch {
	case p.peek().kind == tOp:
		op := p.next().text
		v, err := p.value(false)
		if err != nil {
			return nil, err
		}
		return &Cmp{Field: f, Op: op, Value: v}, nil
	case p.isKw("LIKE"):
		p.next()
		if p.peek().kind != tString {
			return nil, p.unexpected("LIKE needs a string literal")
		}
		v, err := p.value(true)
		if err != nil {
			return nil, err
		}
		return &Cmp{Field: f, Op: "LIKE", Value: v}, nil
	case p.isKw("IN"), p.isKw("NOT"):
		in := &In{Field: f}
		if p.isKw("NOT") {
			p.next()
			in.Not = true
			if !p.isKw("IN") {
				return nil, p.unexpected("expecting IN")
			}
		}
		p.next()
		if p.peek().kind != tLParen {
			return nil, p.unexpected("expecting '('")
		}
		p.next()
		for {
			v, err := p.value(false)
			if err != nil {
				return nil, err
			}
			in.Values = append(in.Values, v)
			if p.peek().kind != tComma {
				break
			}
			p.next()
		}
		if p.peek().kind != tRParen {
			return nil, p.unexpected("expecting ')'")
		}
		p.next()
		return in, nil
	}
	return nil, p.unexpected("expecting an operator")
}

func (p *parser) value(like bool) (Value, error) {
	t := p.peek()
	switch {
	case t.kind == tString:
		s, err := Unescape(t.text, like)
		if err != nil {
			return Value{}, &SOQLError{t.pos, err.Error()}
		}
		p.next()
		return Value{Kind: ValString, Raw: t.text, Str: s}, nil
	case t.kind == tNumber:
		p.next()
		return Value{Kind: ValNumber, Raw: t.text, Str: t.text}, nil
	case p.isKw("null"):
		p.next()
		return Value{Kind: ValNull, Raw: "null"}, nil
	case p.isKw("true"), p.isKw("false"):
		p.next()
		v := strings.ToLower(t.text)
		return Value{Kind: ValBool, Raw: v, Str: v}, nil
	}
	return Value{}, p.unexpected("expecting a literal")
}
