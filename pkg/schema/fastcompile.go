package schema

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	neturl "net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Compilation of the fast path: the schema documents (decoded by jsonschema.UnmarshalJSON, numbers
// as json.Number) become trees of nodes. A schema using a keyword outside the set below, or a form of
// a keyword the fast path does not implement (a numeric enum, an anchor $ref, a nested $id, ...),
// fails to compile with errNoFastPath, and its type is validated by the generic validator alone.

// errNoFastPath is wrapped by the compile errors of the fast path.
var errNoFastPath = errors.New("no fast path")

// annotations are keywords that do not affect validation.
var annotations = map[string]bool{
	"title": true, "description": true, "$comment": true, "examples": true, "default": true,
}

var (
	alwaysTrue, alwaysFalse = true, false
	trueNode                = &node{always: &alwaysTrue}
	falseNode               = &node{always: &alwaysFalse}
)

// fastCompiler compiles the fast paths of the types of one registry.
type fastCompiler struct {
	docs     map[string]any // document URL (no fragment) → decoded document
	patterns map[string]*regexp.Regexp
	formats  map[string]func([]byte) bool
	// nodes maps "url#pointer" to its node, for the type being compiled: every $ref to a location
	// shares one node (a cycle is a cycle of pointers). Each type starts afresh, so that a type that
	// fails cannot leave a half-built node to the next.
	nodes map[string]*node
}

func newFastCompiler(docs map[string]any) *fastCompiler {
	return &fastCompiler{
		docs:     docs,
		patterns: map[string]*regexp.Regexp{},
		formats:  map[string]func([]byte) bool{},
	}
}

// compileType compiles the schema document at url.
func (c *fastCompiler) compileType(url string) (*fastValidator, error) {
	c.nodes = map[string]*node{}
	root, err := c.at(url, "")
	c.nodes = nil
	if err != nil {
		return nil, err
	}
	return &fastValidator{root: root}, nil
}

// at compiles the schema at the JSON pointer ptr of the document url.
func (c *fastCompiler) at(url, ptr string) (*node, error) {
	if n, ok := c.nodes[url+"#"+ptr]; ok {
		return n, nil
	}
	doc, ok := c.docs[url]
	if !ok {
		return nil, fmt.Errorf("%w: %s is not an embedded schema", errNoFastPath, url)
	}
	v := doc
	if ptr != "" {
		for _, tok := range strings.Split(ptr, "/")[1:] {
			tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
			found := false
			switch x := v.(type) {
			case map[string]any:
				v, found = x[tok]
			case []any:
				if i, err := strconv.Atoi(tok); err == nil && i >= 0 && i < len(x) {
					v, found = x[i], true
				}
			}
			if !found {
				return nil, fmt.Errorf("%w: %s#%s not found", errNoFastPath, url, ptr)
			}
		}
	}
	return c.compile(v, url, ptr)
}

// child compiles the subschema v at ptr/tok of the document url.
func (c *fastCompiler) child(v any, url, ptr string, toks ...string) (*node, error) {
	for _, t := range toks {
		ptr += "/" + strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1")
	}
	if n, ok := c.nodes[url+"#"+ptr]; ok {
		return n, nil
	}
	return c.compile(v, url, ptr)
}

func (c *fastCompiler) compile(v any, url, ptr string) (*node, error) {
	where := url + "#" + ptr
	var s map[string]any
	switch v := v.(type) {
	case bool:
		if v {
			return trueNode, nil
		}
		return falseNode, nil
	case map[string]any:
		s = v
	default:
		return nil, fmt.Errorf("%w: %s: a schema must be an object or a boolean", errNoFastPath, where)
	}
	n := &node{}
	c.nodes[where] = n
	fail := func(kw, msg string, args ...any) error {
		return fmt.Errorf("%w: %s: %s: %s", errNoFastPath, where, kw, fmt.Sprintf(msg, args...))
	}

	var obj objectBuilder
	for _, kw := range slices.Sorted(maps.Keys(s)) {
		v := s[kw]
		var err error
		switch kw {
		case "$schema", "$id":
			// newRegistry checks their values at the document root; below it they would start a new
			// resource with its own base URI.
			if ptr != "" {
				return nil, fail(kw, "only supported at the document root")
			}
		case "$defs":
			// Definitions are compiled when referenced.
		case "type":
			n.types, err = parseTypes(v)
		case "enum", "const":
			vals, isArr := v.([]any)
			if kw == "const" {
				vals, isArr = []any{v}, true
			}
			if !isArr {
				return nil, fail(kw, "not an array")
			}
			n.hasEnum = true
			for _, x := range vals {
				k, err := parseConstant(x)
				if err != nil {
					return nil, fail(kw, "%v", err)
				}
				n.enum = append(n.enum, k)
			}
		case "minLength", "maxLength", "pattern", "format":
			if n.str == nil {
				n.str = &stringRules{minLength: -1, maxLength: -1}
			}
			err = c.stringKeyword(n.str, kw, v)
		case "minimum", "maximum":
			if n.num == nil {
				n.num = &numberRules{}
			}
			var d *decimal
			if d, err = parseBound(v); err == nil {
				if kw == "minimum" {
					n.num.minimum = d
				} else {
					n.num.maximum = d
				}
			}
		case "properties", "required", "additionalProperties", "propertyNames", "dependentRequired", "maxProperties":
			err = c.objectKeyword(&obj, kw, v, url, ptr)
		case "items", "minItems", "maxItems", "uniqueItems":
			if n.arr == nil {
				n.arr = &arrayRules{minItems: -1, maxItems: -1}
			}
			err = c.arrayKeyword(n.arr, kw, v, url, ptr)
		case "$ref":
			ref, ok := v.(string)
			if !ok {
				return nil, fail(kw, "not a string")
			}
			n.ref, err = c.ref(url, ref)
		case "allOf", "anyOf":
			subs, ok := v.([]any)
			if !ok || len(subs) == 0 {
				return nil, fail(kw, "not a non-empty array")
			}
			var nodes []*node
			for i, sub := range subs {
				sn, err := c.child(sub, url, ptr, kw, strconv.Itoa(i))
				if err != nil {
					return nil, err
				}
				nodes = append(nodes, sn)
			}
			if kw == "allOf" {
				n.allOf = nodes
			} else {
				n.anyOf = nodes
			}
		case "if":
			if n.ifNode, err = c.child(v, url, ptr, kw); err != nil {
				return nil, err
			}
			for _, branch := range []string{"then", "else"} {
				sub, ok := s[branch]
				if !ok {
					continue
				}
				bn, err := c.child(sub, url, ptr, branch)
				if err != nil {
					return nil, err
				}
				if branch == "then" {
					n.thenNode = bn
				} else {
					n.elseNode = bn
				}
			}
		case "then", "else":
			// Compiled with "if"; without it, ignored (as by the generic validator).
		default:
			if !annotations[kw] {
				return nil, fail(kw, "keyword not implemented")
			}
		}
		if err != nil {
			if errors.Is(err, errNoFastPath) {
				return nil, err
			}
			return nil, fail(kw, "%v", err)
		}
	}
	o, err := obj.build()
	if err != nil {
		return nil, fail("properties", "%v", err)
	}
	n.obj = o
	return n, nil
}

// ref compiles the target of $ref, resolved against the document url. Only JSON pointer fragments
// are supported (no anchors).
func (c *fastCompiler) ref(url, ref string) (*node, error) {
	base, err := neturl.Parse(url)
	if err != nil {
		return nil, err
	}
	r, err := neturl.Parse(ref)
	if err != nil {
		return nil, err
	}
	abs := base.ResolveReference(r)
	frag := abs.Fragment
	abs.Fragment, abs.RawFragment = "", ""
	if frag != "" && frag[0] != '/' {
		return nil, fmt.Errorf("%w: $ref %q: anchors are not implemented", errNoFastPath, ref)
	}
	return c.at(abs.String(), frag)
}

func parseTypes(v any) (typeSet, error) {
	names, ok := v.([]any)
	if !ok {
		names = []any{v}
	}
	var ts typeSet
	for _, x := range names {
		name, _ := x.(string)
		switch name {
		case "null":
			ts |= tNull
		case "boolean":
			ts |= tBoolean
		case "integer":
			ts |= tInteger
		case "number":
			ts |= tNumber
		case "string":
			ts |= tString
		case "array":
			ts |= tArray
		case "object":
			ts |= tObject
		default:
			return 0, fmt.Errorf("unknown type %v", x)
		}
	}
	if ts == 0 {
		return 0, errors.New("no types")
	}
	return ts, nil
}

// parseConstant reads an enum or const value. Numbers, objects and arrays are not implemented.
func parseConstant(v any) (constant, error) {
	switch v := v.(type) {
	case string:
		return constant{kind: kString, text: []byte(v)}, nil
	case bool:
		if v {
			return constant{kind: kTrue}, nil
		}
		return constant{kind: kFalse}, nil
	case nil:
		return constant{kind: kNull}, nil
	}
	return constant{}, fmt.Errorf("%w: values of type %T are not implemented", errNoFastPath, v)
}

// parseCount reads a non-negative integer keyword value (minLength, maxItems, ...).
func parseCount(v any) (int, error) {
	num, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("%v is not a number", v)
	}
	i, err := strconv.Atoi(string(num))
	if err != nil || i < 0 {
		return 0, fmt.Errorf("%v is not a non-negative integer", v)
	}
	return i, nil
}

// parseBound reads minimum or maximum.
func parseBound(v any) (*decimal, error) {
	num, ok := v.(json.Number)
	if !ok {
		return nil, fmt.Errorf("%v is not a number", v)
	}
	lit := []byte(num)
	var s scratch
	if !s.scan(lit) || len(s.tape) != 1 || s.tape[0].kind != kNumber {
		return nil, fmt.Errorf("%q is not a JSON number", num)
	}
	d, ok := parseDecimal(lit)
	if !ok {
		return nil, fmt.Errorf("%w: %s is out of range", errNoFastPath, num)
	}
	return &d, nil
}

func (c *fastCompiler) stringKeyword(r *stringRules, kw string, v any) error {
	switch kw {
	case "minLength", "maxLength":
		n, err := parseCount(v)
		if kw == "minLength" {
			r.minLength = n
		} else {
			r.maxLength = n
		}
		return err
	case "pattern":
		// The generic validator compiles patterns with regexp.Compile (its default engine) and
		// matches them unanchored against the decoded string, as Match does here.
		p, ok := v.(string)
		if !ok {
			return fmt.Errorf("%v is not a string", v)
		}
		re, ok := c.patterns[p]
		if !ok {
			var err error
			if re, err = regexp.Compile(p); err != nil {
				return err
			}
			c.patterns[p] = re
		}
		r.pattern = re
	case "format":
		name, ok := v.(string)
		if !ok {
			return fmt.Errorf("%v is not a string", v)
		}
		f, ok := c.formats[name]
		if !ok {
			var err error
			if f, err = fastFormat(name); err != nil {
				return err
			}
			c.formats[name] = f
		}
		r.format = f
	}
	return nil
}

func (c *fastCompiler) arrayKeyword(r *arrayRules, kw string, v any, url, ptr string) error {
	var err error
	switch kw {
	case "items":
		if _, isArr := v.([]any); isArr {
			return fmt.Errorf("%w: the array form (before draft 2020-12)", errNoFastPath)
		}
		r.items, err = c.child(v, url, ptr, kw)
	case "minItems":
		r.minItems, err = parseCount(v)
	case "maxItems":
		r.maxItems, err = parseCount(v)
	case "uniqueItems":
		b, ok := v.(bool)
		if !ok {
			return fmt.Errorf("%v is not a boolean", v)
		}
		r.unique = b
	}
	return err
}

// objectBuilder collects the object keywords of a schema; build numbers the property names.
type objectBuilder struct {
	used          bool
	props         map[string]*node
	required      []string
	additional    *node
	propertyNames *node
	dependent     map[string][]string
	maxProperties int
	hasMax        bool
}

func (c *fastCompiler) objectKeyword(b *objectBuilder, kw string, v any, url, ptr string) error {
	b.used = true
	var err error
	switch kw {
	case "properties":
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%v is not an object", v)
		}
		b.props = map[string]*node{}
		for _, name := range slices.Sorted(maps.Keys(m)) {
			if b.props[name], err = c.child(m[name], url, ptr, kw, name); err != nil {
				return err
			}
		}
	case "required":
		b.required, err = stringList(v)
	case "additionalProperties":
		b.additional, err = c.child(v, url, ptr, kw)
	case "propertyNames":
		b.propertyNames, err = c.child(v, url, ptr, kw)
	case "dependentRequired":
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%v is not an object", v)
		}
		b.dependent = map[string][]string{}
		for name, need := range m {
			if b.dependent[name], err = stringList(need); err != nil {
				return err
			}
		}
	case "maxProperties":
		b.maxProperties, err = parseCount(v)
		b.hasMax = true
	}
	return err
}

func stringList(v any) ([]string, error) {
	arr, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%v is not an array", v)
	}
	out := make([]string, 0, len(arr))
	for _, x := range arr {
		s, ok := x.(string)
		if !ok {
			return nil, fmt.Errorf("%v is not a string", x)
		}
		out = append(out, s)
	}
	return out, nil
}

// build returns the object rules, nil if no object keyword was used.
func (b *objectBuilder) build() (*objectRules, error) {
	if !b.used {
		return nil, nil
	}
	r := &objectRules{additional: b.additional, propertyNames: b.propertyNames, maxProperties: -1}
	if b.hasMax {
		r.maxProperties = b.maxProperties
	}
	names := slices.Collect(maps.Keys(b.props))
	names = append(names, b.required...)
	for name, need := range b.dependent {
		names = append(names, name)
		names = append(names, need...)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	if len(names) > 64 {
		return nil, fmt.Errorf("%w: %d property names (at most 64 are implemented)", errNoFastPath, len(names))
	}
	if len(names) > 0 {
		r.names = make(map[string]uint8, len(names))
		r.props = make([]*node, len(names))
		for i, name := range names {
			r.names[name] = uint8(i)
			r.props[i] = b.props[name]
		}
	}
	bit := func(name string) uint64 { return 1 << r.names[name] }
	for _, name := range b.required {
		r.required |= bit(name)
	}
	for _, name := range slices.Sorted(maps.Keys(b.dependent)) {
		d := dependency{prop: bit(name)}
		for _, need := range b.dependent[name] {
			d.need |= bit(need)
		}
		r.dependent = append(r.dependent, d)
	}
	return r, nil
}
