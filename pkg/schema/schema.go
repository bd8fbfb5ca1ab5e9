// Package schema validates CloudEvents data against the JSON Schemas embedded in
// github.com/omnibus-dev/omnibus/schemas.
//
// Every "<type>.json" there (draft 2020-12) is compiled once into a [Registry] keyed by the CloudEvents
// type (the file name without ".json"; "*.defs.json" files hold shared definitions and are not types).
// All $id/$ref resolution is served from the embedded files: nothing is ever loaded from the network.
// Format assertions are on (date-time, uri, ...).
//
// Producers call [Registry.Validate] before publishing, consumers on receipt (dead-lettering what fails
// with [ValidationError.Reason]); [Registry.SchemaURL] is the event's dataschema.
//
// Validation runs on the hot path of the whole bus, so each schema is also compiled into a fast path
// (fast*.go) that checks the data bytes directly, without decoding them into Go maps, and allocates
// nothing for typical valid data. It only ever answers "valid" where the generic validator
// (santhosh-tekuri/jsonschema) would; everything else (invalid data, and whatever it cannot decide
// exactly: duplicate keys, invalid UTF-8, numbers beyond exact comparison, ...) goes through the
// generic validator, which produces the error. Errors are therefore the generic validator's.
package schema

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"

	"github.com/omnibus-dev/omnibus/schemas"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// BaseURL is the base of every schema $id: the schema of type T is BaseURL + T + ".json".
const BaseURL = "https://omnibus.dev/schemas/"

const (
	draft2020 = "https://json-schema.org/draft/2020-12/schema"
	defsExt   = ".defs.json"
)

var (
	// ErrUnknownType is wrapped by the error of [Registry.Validate] for a type that has no schema.
	ErrUnknownType = errors.New("schema: unknown CloudEvents type")
	// ErrInvalid is wrapped by the error of [Registry.Validate] for data that does not match its schema
	// (or is not JSON). The error is a *[ValidationError].
	ErrInvalid = errors.New("schema: invalid data")
)

// ValidationError is the error of [Registry.Validate] for invalid data. It wraps [ErrInvalid] and,
// when the data was JSON, the *jsonschema.ValidationError with the full detail.
type ValidationError struct {
	// Type is the CloudEvents type the data was validated as.
	Type string
	// Reason is short and human-readable, e.g. "data: missing property 'from'" or
	// "data/message/type: value must be one of 'text', 'image'". It names the failing location and
	// rule but does not quote the offending string values (they may be personal data).
	Reason string

	cause error
}

func (e *ValidationError) Error() string {
	return "schema: invalid " + e.Type + ": " + e.Reason
}

// Unwrap returns [ErrInvalid] and the underlying validator error, if any.
func (e *ValidationError) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrInvalid}
	}
	return []error{ErrInvalid, e.cause}
}

type entry struct {
	schema *jsonschema.Schema
	url    string
	fast   *fastValidator // nil if the type has no fast path (see noFast)
	noFast error          // why fast is nil
}

// Registry holds the compiled schema of every CloudEvents type. It is immutable after [New] and safe
// for concurrent use.
type Registry struct {
	types       map[string]entry
	names       []string // sorted
	fingerprint string
}

// Fingerprint identifies the exact set of schema files the registry compiled (a hash of their
// names and bytes). Two processes with equal fingerprints validate identically.
func (r *Registry) Fingerprint() string { return r.fingerprint }

// New compiles every schema embedded in github.com/omnibus-dev/omnibus/schemas.
func New() (*Registry, error) {
	return newRegistry(schemas.FS())
}

var (
	defaultOnce sync.Once
	defaultReg  *Registry
)

// Default returns a process-wide Registry built by [New] on first use. It panics only if the embedded
// schema files are broken, which the tests of this package rule out.
func Default() *Registry {
	defaultOnce.Do(func() {
		r, err := New()
		if err != nil {
			panic(err)
		}
		defaultReg = r
	})
	return defaultReg
}

func newRegistry(fsys fs.FS) (*Registry, error) {
	names, err := fs.Glob(fsys, "*.json")
	if err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.UseLoader(refuseLoader{})
	fp := sha256.New()
	docs := make(map[string]any, len(names)) // URL → document, for the fast path
	for _, name := range names {
		raw, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("schema: %s: %w", name, err)
		}
		fp.Write([]byte(name))
		fp.Write([]byte{0})
		fp.Write(raw)
		doc, err := readJSON(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("schema: %s: %w", name, err)
		}
		obj, _ := doc.(map[string]any)
		if id, _ := obj["$id"].(string); id != BaseURL+name {
			return nil, fmt.Errorf("schema: %s: $id is %q, want %q", name, id, BaseURL+name)
		}
		if s, _ := obj["$schema"].(string); s != draft2020 {
			return nil, fmt.Errorf("schema: %s: $schema is %q, want %q", name, s, draft2020)
		}
		if err := c.AddResource(BaseURL+name, doc); err != nil {
			return nil, fmt.Errorf("schema: %s: %w", name, err)
		}
		docs[BaseURL+name] = doc
	}
	fc := newFastCompiler(docs)
	r := &Registry{types: make(map[string]entry, len(names)), fingerprint: hex.EncodeToString(fp.Sum(nil))[:16]}
	for _, name := range names {
		url := BaseURL + name
		sch, err := c.Compile(url) // *.defs.json too, so a broken shared file fails here
		if err != nil {
			return nil, fmt.Errorf("schema: compile %s: %w", name, err)
		}
		if strings.HasSuffix(name, defsExt) {
			continue
		}
		typ := strings.TrimSuffix(name, ".json")
		fast, noFast := fc.compileType(url)
		r.types[typ] = entry{schema: sch, url: url, fast: fast, noFast: noFast}
		r.names = append(r.names, typ)
	}
	slices.Sort(r.names)
	return r, nil
}

func readJSON(fsys fs.FS, name string) (any, error) {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, err
	}
	return jsonschema.UnmarshalJSON(bytes.NewReader(b))
}

// refuseLoader is the compiler's only URL loader: every schema is added up front from the embedded
// files, so anything else a $ref names would be a network (or disk) load, which is refused.
type refuseLoader struct{}

func (refuseLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("%s is not an embedded schema (network and file loads are disabled)", url)
}

// Validate checks data (the JSON data of a CloudEvent) against the schema of ceType. It returns nil,
// an error wrapping [ErrUnknownType], or a *[ValidationError] (wrapping [ErrInvalid]).
func (r *Registry) Validate(ceType string, data []byte) error {
	e, ok := r.types[ceType]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownType, ceType)
	}
	if e.fast != nil && e.fast.valid(data) {
		return nil
	}
	return e.validate(ceType, data)
}

// validate is the generic validator: it decodes data and checks it with the compiled schema.
// The library panics on some numbers (an exponent beyond about 10^6 checked against minimum or
// maximum): outside input must never crash a consumer, so a panic is an invalid document.
func (e entry) validate(ceType string, data []byte) (verr error) {
	defer func() {
		if r := recover(); r != nil {
			verr = &ValidationError{Type: ceType, Reason: "data: cannot be checked (a number out of range?)",
				cause: fmt.Errorf("validator panicked: %v", r)}
		}
	}()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return &ValidationError{Type: ceType, Reason: "data: not a JSON document"}
	}
	if err := e.schema.Validate(v); err != nil {
		var ve *jsonschema.ValidationError
		if errors.As(err, &ve) {
			return &ValidationError{Type: ceType, Reason: reason(ve), cause: ve}
		}
		return &ValidationError{Type: ceType, Reason: "data: " + err.Error(), cause: err}
	}
	return nil
}

// Has reports whether ceType has a schema.
func (r *Registry) Has(ceType string) bool {
	_, ok := r.types[ceType]
	return ok
}

// Types returns the CloudEvents types that have a schema, sorted.
func (r *Registry) Types() []string {
	return slices.Clone(r.names)
}

// SchemaURL returns the $id of the schema of ceType (to be used as the CloudEvents dataschema), or ""
// if ceType has no schema.
func (r *Registry) SchemaURL(ceType string) string {
	return r.types[ceType].url
}

// --- reasons

var printer = message.NewPrinter(language.English)

const (
	maxReasons   = 3
	maxReasonLen = 512
)

// reason renders the leaf failures of ve as "data<json pointer>: <what failed>", at most maxReasons of
// them, joined by "; ".
func reason(ve *jsonschema.ValidationError) string {
	var parts []string
	more := 0
	var walk func(*jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		var p string
		switch {
		case len(e.Causes) > 0 && isAlternatives(e.ErrorKind):
			// anyOf/oneOf: one part listing what each alternative lacked.
			var alts []string
			for _, l := range leaves(e, nil) {
				a := describe(l.ErrorKind)
				if n := len(e.InstanceLocation); len(l.InstanceLocation) > n {
					rel := l.InstanceLocation[n:]
					a = jsonPointer(rel)[1:] + ": " + a
				}
				if !slices.Contains(alts, a) {
					alts = append(alts, a)
				}
			}
			p = "data" + jsonPointer(e.InstanceLocation) + ": " + strings.Join(alts, " or ")
		case len(e.Causes) > 0:
			for _, c := range e.Causes {
				walk(c)
			}
			return
		default:
			p = "data" + jsonPointer(e.InstanceLocation) + ": " + describe(e.ErrorKind)
		}
		if slices.Contains(parts, p) {
			return
		}
		if len(parts) == maxReasons {
			more++
			return
		}
		parts = append(parts, p)
	}
	walk(ve)
	s := strings.Join(parts, "; ")
	if more > 0 {
		s += fmt.Sprintf(" (and %d more)", more)
	}
	if len(s) > maxReasonLen {
		s = strings.ToValidUTF8(s[:maxReasonLen], "") + "…"
	}
	return s
}

func isAlternatives(k jsonschema.ErrorKind) bool {
	switch k := k.(type) {
	case *kind.AnyOf:
		return true
	case *kind.OneOf:
		return len(k.Subschemas) == 0
	}
	return false
}

func leaves(e *jsonschema.ValidationError, out []*jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(e.Causes) == 0 {
		return append(out, e)
	}
	for _, c := range e.Causes {
		out = leaves(c, out)
	}
	return out
}

// describe is the library's message for k, except for kinds whose message quotes the offending value.
func describe(k jsonschema.ErrorKind) string {
	switch k := k.(type) {
	case *kind.Format:
		return fmt.Sprintf("not a valid %q", k.Want)
	case *kind.Pattern:
		return fmt.Sprintf("does not match pattern %q", k.Want)
	default:
		return k.LocalizedString(printer)
	}
}

func jsonPointer(tokens []string) string {
	var sb strings.Builder
	for _, t := range tokens {
		sb.WriteByte('/')
		t = strings.ReplaceAll(t, "~", "~0")
		sb.WriteString(strings.ReplaceAll(t, "/", "~1"))
	}
	return sb.String()
}
