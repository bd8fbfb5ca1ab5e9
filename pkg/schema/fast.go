package schema

import (
	"bytes"
	"regexp"
)

// The fast path of [Registry.Validate].
//
// newRegistry compiles every type's schema a second time, from the same JSON documents, into a tree
// of nodes (fastcompile.go). Validation scans the data once onto a tape (fastscan.go) and evaluates
// the tree over it, without decoding into Go maps. Every check answers valid, invalid or unknown;
// unknown covers whatever the fast path does not decide exactly as the generic validator would (a
// number too large to compare, uniqueItems over objects, ...). Only valid is trusted: anything else
// sends the data through the generic validator, which then also produces the error. Because "if"
// takes a branch on a negative answer too, a subschema's invalid must be as exact as its valid; where
// it is not, the answer is unknown.

// result is the answer of the fast path for one (sub)schema and one value.
type result uint8

const (
	isValid   result = iota
	isInvalid        // exactly as the generic validator would say
	isUnknown        // not decided exactly here: only the generic validator can tell
)

// typeSet is a set of JSON Schema types, one bit per type.
type typeSet uint8

const (
	tNull typeSet = 1 << iota
	tBoolean
	tInteger
	tNumber
	tString
	tArray
	tObject
)

// node is a compiled (sub)schema. A zero node accepts everything.
type node struct {
	// always, if not nil, makes the node a boolean schema (true or false); nothing else is set.
	always *bool

	types typeSet // 0 without a type keyword
	enum  []constant
	// hasEnum is set for enum and const (const is an enum of one); an empty enum rejects everything.
	hasEnum bool

	str *stringRules
	num *numberRules
	obj *objectRules
	arr *arrayRules

	ref      *node
	allOf    []*node
	anyOf    []*node
	ifNode   *node
	thenNode *node // nil: no then
	elseNode *node // nil: no else
}

// constant is a value of enum or const: a string, true, false or null.
type constant struct {
	kind tokKind
	text []byte // strings only
}

type stringRules struct {
	minLength, maxLength int // -1 when absent; in code points
	pattern              *regexp.Regexp
	format               func([]byte) bool
}

type numberRules struct {
	minimum, maximum *decimal
}

type objectRules struct {
	// names numbers every property name the rules mention (in properties, required and
	// dependentRequired): a member's bit in the masks below.
	names    map[string]uint8
	props    []*node // by bit; nil for names not in properties
	required uint64

	additional    *node // nil: additionalProperties absent
	propertyNames *node
	dependent     []dependency
	maxProperties int // -1 when absent
}

// dependency is one entry of dependentRequired: when the property with bit prop is present, every
// property of need must be.
type dependency struct {
	prop, need uint64
}

type arrayRules struct {
	items              *node
	minItems, maxItems int // -1 when absent
	unique             bool
}

const (
	// maxEvalDepth bounds the nesting of schema evaluation (a $ref cycle that does not descend into
	// the data would otherwise never end; the generic validator reports such cycles).
	maxEvalDepth = 4 * maxFastDepth
	// maxUniqueItems bounds the arrays whose uniqueItems the fast path checks (pairwise).
	maxUniqueItems = 256
)

// fastValidator is the compiled fast path of one type.
type fastValidator struct {
	root *node
}

// valid reports whether data is definitely valid (false: invalid, or not known here).
func (f *fastValidator) valid(data []byte) bool {
	s := getScratch()
	ok := f.validWith(s, data)
	putScratch(s)
	return ok
}

// validWith is valid with a caller-provided scratch.
func (f *fastValidator) validWith(s *scratch, data []byte) bool {
	if !s.scan(data) {
		return false
	}
	e := evaluator{s: s}
	return e.eval(f.root, 0) == isValid
}

// evaluator evaluates nodes over the tape of s.
type evaluator struct {
	s     *scratch
	depth int
}

// eval evaluates n against the value at tape index ti. The keywords of a node are a conjunction:
// the first answer that is not valid is the node's answer (an early unknown where a later keyword
// would have said invalid is merely less precise).
func (e *evaluator) eval(n *node, ti uint32) result {
	if n.always != nil {
		if *n.always {
			return isValid
		}
		return isInvalid
	}
	if e.depth >= maxEvalDepth {
		return isUnknown
	}
	e.depth++
	r := e.evalKeywords(n, ti)
	e.depth--
	return r
}

func (e *evaluator) evalKeywords(n *node, ti uint32) result {
	t := &e.s.tape[ti]
	if n.types != 0 {
		if r := e.typeOf(n.types, t); r != isValid {
			return r
		}
	}
	if n.hasEnum && !e.inEnum(n.enum, t) {
		return isInvalid
	}
	var r result
	switch {
	case t.kind == kString && n.str != nil:
		r = e.stringRules(n.str, t)
	case t.kind == kNumber && n.num != nil:
		r = numberRulesOf(n.num, e.s.data[t.start:t.end])
	case t.kind == kObject && n.obj != nil:
		r = e.objectRules(n.obj, ti)
	case t.kind == kArray && n.arr != nil:
		r = e.arrayRules(n.arr, ti)
	}
	if r != isValid {
		return r
	}
	if n.ref != nil {
		if r := e.eval(n.ref, ti); r != isValid {
			return r
		}
	}
	for _, sub := range n.allOf {
		if r := e.eval(sub, ti); r != isValid {
			return r
		}
	}
	if len(n.anyOf) > 0 {
		if r := e.anyOf(n.anyOf, ti); r != isValid {
			return r
		}
	}
	if n.ifNode != nil {
		switch e.eval(n.ifNode, ti) {
		case isValid:
			if n.thenNode != nil {
				return e.eval(n.thenNode, ti)
			}
		case isInvalid:
			if n.elseNode != nil {
				return e.eval(n.elseNode, ti)
			}
		default:
			return isUnknown
		}
	}
	return isValid
}

// anyOf is valid if a branch is, invalid if all are.
func (e *evaluator) anyOf(subs []*node, ti uint32) result {
	r := isInvalid
	for _, sub := range subs {
		switch e.eval(sub, ti) {
		case isValid:
			return isValid
		case isUnknown:
			r = isUnknown
		}
	}
	return r
}

func (e *evaluator) typeOf(ts typeSet, t *token) result {
	var ok bool
	switch t.kind {
	case kNull:
		ok = ts&tNull != 0
	case kTrue, kFalse:
		ok = ts&tBoolean != 0
	case kString:
		ok = ts&tString != 0
	case kArray:
		ok = ts&tArray != 0
	case kObject:
		ok = ts&tObject != 0
	case kNumber:
		if ts&tNumber != 0 {
			return isValid
		}
		if ts&tInteger == 0 {
			return isInvalid
		}
		d, known := parseDecimal(e.s.data[t.start:t.end])
		if !known {
			return isUnknown
		}
		ok = d.isInteger()
	}
	if ok {
		return isValid
	}
	return isInvalid
}

func (e *evaluator) inEnum(enum []constant, t *token) bool {
	for i := range enum {
		c := &enum[i]
		if c.kind == t.kind && (c.kind != kString || bytes.Equal(c.text, e.s.text(t))) {
			return true
		}
	}
	return false
}

func (e *evaluator) stringRules(r *stringRules, t *token) result {
	n := int(t.n)
	if r.minLength >= 0 && n < r.minLength || r.maxLength >= 0 && n > r.maxLength {
		return isInvalid
	}
	if r.pattern == nil && r.format == nil {
		return isValid
	}
	text := e.s.text(t)
	if r.pattern != nil && !r.pattern.Match(text) {
		return isInvalid
	}
	if r.format != nil && !r.format(text) {
		return isInvalid
	}
	return isValid
}

func numberRulesOf(r *numberRules, lit []byte) result {
	d, ok := parseDecimal(lit)
	if !ok {
		return isUnknown
	}
	if r.minimum != nil && cmpDecimal(&d, r.minimum) < 0 || r.maximum != nil && cmpDecimal(&d, r.maximum) > 0 {
		return isInvalid
	}
	return isValid
}

func (e *evaluator) objectRules(r *objectRules, ti uint32) result {
	tape := e.s.tape
	o := &tape[ti]
	if r.maxProperties >= 0 && int(o.n) > r.maxProperties {
		return isInvalid
	}
	var seen uint64
	i := ti + 1
	for range o.n {
		key, val := &tape[i], i+1
		var sub *node
		if r.names != nil {
			if bit, ok := r.names[string(e.s.text(key))]; ok {
				seen |= 1 << bit
				sub = r.props[bit]
			}
		}
		if sub == nil {
			sub = r.additional
		}
		if sub != nil {
			if res := e.eval(sub, val); res != isValid {
				return res
			}
		}
		if r.propertyNames != nil {
			if res := e.eval(r.propertyNames, i); res != isValid {
				return res
			}
		}
		i = tape[val].next
	}
	if seen&r.required != r.required {
		return isInvalid
	}
	for _, d := range r.dependent {
		if seen&d.prop != 0 && seen&d.need != d.need {
			return isInvalid
		}
	}
	return isValid
}

func (e *evaluator) arrayRules(r *arrayRules, ti uint32) result {
	tape := e.s.tape
	a := &tape[ti]
	n := int(a.n)
	if r.minItems >= 0 && n < r.minItems || r.maxItems >= 0 && n > r.maxItems {
		return isInvalid
	}
	if r.unique && n > 1 {
		if res := e.unique(ti); res != isValid {
			return res
		}
	}
	if r.items != nil {
		for i := ti + 1; i < a.next; i = tape[i].next {
			if res := e.eval(r.items, i); res != isValid {
				return res
			}
		}
	}
	return isValid
}

// unique checks uniqueItems for arrays of scalars; arrays holding objects or arrays (whose equality
// the fast path does not implement) and very long arrays are unknown.
func (e *evaluator) unique(ti uint32) result {
	tape := e.s.tape
	a := &tape[ti]
	if a.n > maxUniqueItems {
		return isUnknown
	}
	for i := ti + 1; i < a.next; i = tape[i].next {
		x := &tape[i]
		if x.kind == kObject || x.kind == kArray {
			return isUnknown
		}
		for j := ti + 1; j < i; j = tape[j].next {
			eq, known := e.equalScalars(&tape[j], x)
			if !known {
				return isUnknown
			}
			if eq {
				return isInvalid
			}
		}
	}
	return isValid
}

// equalScalars compares two scalar tokens as JSON values (numbers by value: 1 equals 1.0).
func (e *evaluator) equalScalars(a, b *token) (eq, known bool) {
	if a.kind != b.kind {
		return false, true
	}
	switch a.kind {
	case kString:
		return bytes.Equal(e.s.text(a), e.s.text(b)), true
	case kNumber:
		da, ok1 := parseDecimal(e.s.data[a.start:a.end])
		db, ok2 := parseDecimal(e.s.data[b.start:b.end])
		if !ok1 || !ok2 {
			return false, false
		}
		return cmpDecimal(&da, &db) == 0, true
	}
	return true, true // null, true, false
}
