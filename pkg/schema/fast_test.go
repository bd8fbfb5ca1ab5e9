package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math/big"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"unicode/utf8"

	"github.com/omnibus-dev/omnibus/schemas"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// genericValid is the verdict of the generic validator alone. The library panics on some inputs
// (a number beyond big.Rat's range where minimum or maximum applies); a panic counts as not valid.
func genericValid(r *Registry, typ string, data []byte) (ok, panicked bool) {
	defer func() {
		if recover() != nil {
			ok, panicked = false, true
		}
	}()
	e := r.types[typ]
	return e.validate(typ, data) == nil, false
}

// fastValid is the verdict of the fast path alone.
func fastValid(t testing.TB, r *Registry, typ string, data []byte) bool {
	t.Helper()
	e := r.types[typ]
	if e.fast == nil {
		t.Fatalf("%s has no fast path: %v", typ, e.noFast)
	}
	return e.fast.valid(data)
}

func TestFastPathEveryType(t *testing.T) {
	t.Parallel()
	r := Default()
	var missing []string
	for _, typ := range r.Types() {
		if e := r.types[typ]; e.fast == nil {
			missing = append(missing, fmt.Sprintf("%s: %v", typ, e.noFast))
		}
	}
	if len(missing) > 0 {
		t.Fatalf("types without a fast path (validated by the generic validator alone):\n%s",
			strings.Join(missing, "\n"))
	}
}

func TestFastPathAgreesOnExamples(t *testing.T) {
	t.Parallel()
	r := Default()
	for _, e := range loadExamples(t) {
		t.Run(e.typ+"/"+e.name, func(t *testing.T) {
			t.Parallel()
			fast := fastValid(t, r, e.typ, e.data)
			gen, _ := genericValid(r, e.typ, e.data)
			if fast != gen || gen != e.valid {
				t.Fatalf("fast path says valid=%v, generic validator valid=%v, example is valid=%v", fast, gen, e.valid)
			}
		})
	}
}

// TestFastPathAgreesOnSeeds checks the fuzz seeds (examples and their mutations) both ways: the fast
// path says valid exactly when the generic validator does, except for the seeds the fast path leaves
// to the generic validator by design (duplicate keys, invalid UTF-8, lone surrogates, numbers beyond
// exact comparison), where it must say "not valid".
func TestFastPathAgreesOnSeeds(t *testing.T) {
	t.Parallel()
	r := Default()
	seeds := fastSeeds(t)
	deferred := 0
	for _, s := range seeds {
		fast := fastValid(t, r, s.typ, s.data)
		gen, panicked := genericValid(r, s.typ, s.data)
		switch {
		case fast == gen:
		case s.mayDefer && !fast:
			deferred++
		default:
			t.Errorf("%s %s: fast path valid=%v, generic validator valid=%v (panicked=%v)\n%s",
				s.typ, s.name, fast, gen, panicked, s.data)
		}
	}
	t.Logf("%d seeds, %d left to the generic validator by design", len(seeds), deferred)
}

// FuzzFastPathAgreesWithValidator is the soundness check of the fast path: whenever it says valid,
// the generic validator must agree.
func FuzzFastPathAgreesWithValidator(f *testing.F) {
	r := Default()
	for _, s := range fastSeeds(f) {
		f.Add(s.typ, s.data)
	}
	f.Fuzz(func(t *testing.T, typ string, data []byte) {
		e, ok := r.types[typ]
		if !ok || e.fast == nil {
			return
		}
		if !e.fast.valid(data) {
			return
		}
		if gen, panicked := genericValid(r, typ, data); !gen {
			err := e.validate(typ, data)
			if panicked {
				err = errors.New("the generic validator panicked")
			}
			t.Fatalf("%s: the fast path says valid, the generic validator says %v\n%q", typ, err, data)
		}
		if err := r.Validate(typ, data); err != nil {
			t.Fatalf("%s: Validate = %v after the fast path said valid", typ, err)
		}
	})
}

// --- seeds

type fastSeed struct {
	typ, name string
	data      []byte
	// mayDefer marks inputs the fast path leaves to the generic validator by design.
	mayDefer bool
}

// fastSeeds returns every example plus mutations of every valid one: each top-level member dropped,
// duplicated (with the right and a wrong value in both orders) and given a value of another type;
// each leaf replaced (long, empty and non-ASCII strings, escapes, numbers such as 1.0, 1e2, -0 and
// huge ones, null) and each container replaced by null; invalid UTF-8 and lone surrogates in a
// string; leading, trailing and missing bytes.
func fastSeeds(t testing.TB) []fastSeed {
	t.Helper()
	var out []fastSeed
	add := func(e example, name string, data []byte, mayDefer bool) {
		out = append(out, fastSeed{typ: e.typ, name: e.name + "+" + name, data: data, mayDefer: mayDefer})
	}
	for _, e := range loadExamples(t) {
		out = append(out, fastSeed{typ: e.typ, name: e.name, data: e.data})
		if !e.valid {
			continue
		}
		members := topMembers(t, e.data)
		for i, m := range members {
			add(e, "drop "+m.key, joinMembers(slices.Delete(slices.Clone(members), i, i+1)), false)
		}
		if len(members) > 0 {
			m := members[0]
			wrong := json.RawMessage(`{"wrong":[1.0,null]}`)
			dup := func(name string, first, second json.RawMessage) {
				ms := append([]member{{m.key, first}, {m.key, second}}, members[1:]...)
				add(e, name, joinMembers(ms), true)
			}
			dup("duplicate "+m.key, m.value, m.value)
			dup("duplicate "+m.key+" wrong first", wrong, m.value)
			dup("duplicate "+m.key+" wrong last", m.value, wrong)
			for _, v := range []string{`null`, `1.0`, `"x"`, `[]`, `{}`, `true`} {
				ms := slices.Clone(members)
				ms[0].value = json.RawMessage(v)
				add(e, m.key+"="+v, joinMembers(ms), false)
			}
		}
		for _, m := range leafMutations(t, e.data) {
			add(e, m.name, m.data, m.mayDefer)
		}
		add(e, "trailing garbage", append(slices.Clip(e.data), " x"...), false)
		add(e, "trailing value", append(slices.Clip(e.data), "{}"...), false)
		add(e, "trailing NUL", append(slices.Clip(e.data), 0), false)
		add(e, "surrounding space", []byte(" \t\r\n"+string(e.data)+"\n\t "), false)
		add(e, "BOM", []byte("\ufeff"+string(e.data)), false)
		add(e, "truncated", e.data[:len(e.data)/2], false)
	}
	return out
}

type member struct {
	key   string
	value json.RawMessage
}

// topMembers returns the members of the top-level object of data, in order.
func topMembers(t testing.TB, data []byte) []member {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %v %v", tok, err)
	}
	var out []member
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, member{key.(string), v})
	}
	return out
}

func joinMembers(ms []member) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range ms {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(m.key)
		b.Write(k)
		b.WriteByte(':')
		b.Write(m.value)
	}
	b.WriteByte('}')
	return b.Bytes()
}

type mutation struct {
	name     string
	data     []byte
	mayDefer bool
}

const placeholder = "FAST-PLACEHOLDER"

var (
	stringVariants = []string{
		strings.Repeat("a", 5000), "", "你好，世界 😀 é", "a\"b\\c\n<tag>&\u2028\u0000", "2024-06-18T25:00:00Z",
		"3f6c1b8e-2d4a-5e7f-9a1b-6c2d8e4f0a1", "HTTPS://x", "wechat_openid",
	}
	numberVariants = []string{
		"1.0", "1e2", "-0", "1e400", "0.1e1", "90.0000000000000001", "1E-400", "100000000000000000000000",
		"-180.0", "-180.00000000000000001", "1e1000001", "599", "600",
	}
	// rawVariants replace a placeholder string (quotes included) with raw bytes json.Marshal cannot
	// produce; mayDefer says the fast path leaves the result to the generic validator.
	rawVariants = []struct {
		raw      string
		mayDefer bool
	}{
		{"\"a\xffb\"", true}, {"\"\xed\xa0\x80\"", true}, {`"\ud800"`, true}, {`"\udc00x"`, true},
		{`"\ud83d\ude00"`, false}, {`"\u00e9\u4F60"`, false}, {`"\/\b\f\r\t"`, false}, {"\"\x01\"", false},
		{`"\x"`, false}, {`"\u12"`, false},
	}
)

// leafMutations returns data with each leaf value (and each container) replaced in turn.
func leafMutations(t testing.TB, data []byte) []mutation {
	t.Helper()
	doc := decodeNumbers(t, data)
	var out []mutation
	k := 0
	var walk func(path string, v any, set func(any))
	walk = func(path string, v any, set func(any)) {
		emit := func(name string, nv any) {
			set(nv)
			b, err := json.Marshal(doc)
			set(v)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, mutation{name: path + "=" + name, data: b})
		}
		switch v := v.(type) {
		case map[string]any:
			for _, key := range slices.Sorted(maps.Keys(v)) {
				walk(path+"/"+key, v[key], func(nv any) { v[key] = nv })
			}
			emit("null", nil)
		case []any:
			for i := range v {
				walk(fmt.Sprintf("%s/%d", path, i), v[i], func(nv any) { v[i] = nv })
			}
			emit("null", nil)
			if len(v) > 0 {
				emit("doubled", append(slices.Clone(v), v...))
			}
		case string:
			emit(fmt.Sprintf("string%d", k%len(stringVariants)), stringVariants[k%len(stringVariants)])
			emit("upper", strings.ToUpper(v))
			rv := rawVariants[k%len(rawVariants)]
			set(placeholder)
			b, err := json.Marshal(doc)
			set(v)
			if err != nil {
				t.Fatal(err)
			}
			b = bytes.Replace(b, []byte(`"`+placeholder+`"`), []byte(rv.raw), 1)
			out = append(out, mutation{name: fmt.Sprintf("%s=raw%q", path, rv.raw), data: b, mayDefer: rv.mayDefer})
		case json.Number:
			for j := range 3 {
				n := numberVariants[(3*k+j)%len(numberVariants)]
				emit(n, json.Number(n))
			}
			emit("string", string(v))
		case bool:
			emit("null", nil)
			emit("not", !v)
		}
		k++
	}
	walk("", doc, func(any) {})
	return out
}

func decodeNumbers(t testing.TB, data []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// --- allocations

// TestFastPathAllocations is not parallel: testing.AllocsPerRun counts the whole process's allocations.
func TestFastPathAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool (used by the fast path and by regexp) drops items at random under -race")
	}
	r := Default()
	const typ = "omni.desk.message.added"
	data, err := fs.ReadFile(schemas.Examples(), examplesDir+"/"+typ+"/valid/inbound-wechatkf-text.json")
	if err != nil {
		t.Fatal(err)
	}
	fast := r.types[typ].fast
	s := new(scratch)
	if !fast.validWith(s, data) {
		t.Fatal("the fast path rejects the example")
	}
	if n := testing.AllocsPerRun(100, func() { fast.validWith(s, data) }); n != 0 {
		t.Errorf("fast path with a warm scratch: %v allocations per run, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = r.Validate(typ, data) }); n > 0 {
		t.Errorf("Validate of a valid %s: %v allocations per run, want 0", typ, n)
	}
}

// --- compilation

func TestFastPathUnsupportedKeyword(t *testing.T) {
	t.Parallel()
	fsys := fstest.MapFS{
		"omni.test.thing.happened.json": {Data: []byte(`{"$schema":"https://json-schema.org/draft/2020-12/schema",` +
			`"$id":"https://omnibus.dev/schemas/omni.test.thing.happened.json","type":"object",` +
			`"properties":{"n":{"type":"integer","not":{"const":3}}}}`)},
	}
	r, err := newRegistry(fsys)
	if err != nil {
		t.Fatal(err)
	}
	const typ = "omni.test.thing.happened"
	e := r.types[typ]
	if e.fast != nil || !errors.Is(e.noFast, errNoFastPath) || !strings.Contains(e.noFast.Error(), "not: keyword not implemented") {
		t.Fatalf("fast = %v, noFast = %v, want no fast path because of \"not\"", e.fast, e.noFast)
	}
	if err := r.Validate(typ, []byte(`{"n":2}`)); err != nil {
		t.Errorf("valid data: %v", err)
	}
	if err := r.Validate(typ, []byte(`{"n":3}`)); !errors.Is(err, ErrInvalid) {
		t.Errorf("invalid data: %v, want ErrInvalid", err)
	}
}

func TestFastPathRefs(t *testing.T) {
	t.Parallel()
	const head = `"$schema":"https://json-schema.org/draft/2020-12/schema","$id":"https://omnibus.dev/schemas/`
	fsys := fstest.MapFS{
		"x.defs.json": {Data: []byte(`{` + head + `x.defs.json","$defs":{` +
			`"tree":{"type":"object","properties":{"kids":{"type":"array","items":{"$ref":"#/$defs/tree"}},` +
			`"n":{"$ref":"omni.test.tree.grown.json#/$defs/small"}}}}}`)},
		"omni.test.tree.grown.json": {Data: []byte(`{` + head + `omni.test.tree.grown.json",` +
			`"$ref":"x.defs.json#/$defs/tree","$defs":{"small":{"type":"integer","maximum":2}}}`)},
		"omni.test.loop.closed.json": {Data: []byte(`{` + head + `omni.test.loop.closed.json",` +
			`"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"}`)},
	}
	r, err := newRegistry(fsys)
	if err != nil {
		t.Fatal(err)
	}
	const tree = "omni.test.tree.grown"
	for data, want := range map[string]bool{
		`{"kids":[{"kids":[{"n":2.0}]},{}]}`: true,
		`{"kids":[{"kids":[{"n":2.5}]}]}`:    false,
		`{"kids":[{"kids":[{"n":3}]}]}`:      false,
		`{"kids":[{"kids":{}}]}`:             false,
	} {
		if got := fastValid(t, r, tree, []byte(data)); got != want {
			t.Errorf("%s: fast path valid=%v, want %v", data, got, want)
		}
	}
	// A $ref cycle that never descends into the data: the fast path gives up and leaves it to the
	// generic validator (which reports the cycle).
	if fastValid(t, r, "omni.test.loop.closed", []byte(`{}`)) {
		t.Error("the fast path says valid for a schema that loops")
	}
}

// --- scanner, numbers and formats against their references

// FuzzFastScan checks the scanner against encoding/json (as the generic validator calls it): what the
// scanner accepts, jsonschema.UnmarshalJSON accepts as the same value.
func FuzzFastScan(f *testing.F) {
	for _, e := range loadExamples(f) {
		f.Add(e.data)
	}
	for _, s := range []string{`"\ud83d\ude00\u00e9\n"`, `[1, -0, 1.5e-3, 1E+2]`, `{"a":{"a":[]}}`, `{"a":1,"a":2}`,
		"\"\xff\"", `"\ud800"`, `[`, `01`, `1.`, ` null `, `{"\u0061":1,"a":2}`, `tru`, "\"\x7f\u2028\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var s scratch
		if !s.scan(data) {
			return
		}
		want, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("the scanner accepts %q, encoding/json does not: %v", data, err)
		}
		got, next := tapeValue(t, &s, 0)
		if next != uint32(len(s.tape)) {
			t.Fatalf("tape of %q: value ends at %d of %d tokens", data, next, len(s.tape))
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: tape reads %#v, encoding/json %#v", data, got, want)
		}
	})
}

// tapeValue rebuilds the Go value of the tape token i as jsonschema.UnmarshalJSON would decode it.
func tapeValue(t *testing.T, s *scratch, i uint32) (any, uint32) {
	tok := &s.tape[i]
	switch tok.kind {
	case kNull:
		return nil, tok.next
	case kTrue, kFalse:
		return tok.kind == kTrue, tok.next
	case kNumber:
		return json.Number(s.data[tok.start:tok.end]), tok.next
	case kString:
		text := s.text(tok)
		if n := utf8.RuneCount(text); n != int(tok.n) {
			t.Fatalf("string %q: %d runes on the tape, want %d", text, tok.n, n)
		}
		return string(text), tok.next
	case kArray:
		arr := []any{}
		j := i + 1
		for range tok.n {
			var v any
			v, j = tapeValue(t, s, j)
			arr = append(arr, v)
		}
		if j != tok.next {
			t.Fatalf("array at %d ends at %d, next says %d", i, j, tok.next)
		}
		return arr, tok.next
	case kObject:
		obj := map[string]any{}
		j := i + 1
		for range tok.n {
			k := string(s.text(&s.tape[j]))
			obj[k], j = tapeValue(t, s, j+1)
		}
		if j != tok.next {
			t.Fatalf("object at %d ends at %d, next says %d", i, j, tok.next)
		}
		return obj, tok.next
	}
	t.Fatalf("token %d has kind %d", i, tok.kind)
	return nil, 0
}

// FuzzFastDecimal checks exact number comparison and integer detection against big.Rat (which the
// generic validator uses).
func FuzzFastDecimal(f *testing.F) {
	for _, p := range [][2]string{{"1.0", "1"}, {"-0", "0"}, {"1e2", "100"}, {"90.0000000000000001", "90"},
		{"-180", "-180.000"}, {"0.5", "5e-1"}, {"123.456e1", "1234.56"}, {"1e400", "9e399"}, {"-1", "-2"}, {"0.0001", "1E-4"}} {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		da, ok1 := fuzzDecimal(a)
		db, ok2 := fuzzDecimal(b)
		if !ok1 || !ok2 {
			return
		}
		ra, _ := new(big.Rat).SetString(a)
		rb, _ := new(big.Rat).SetString(b)
		if got, want := cmpDecimal(&da, &db), ra.Cmp(rb); got != want {
			t.Fatalf("cmp(%s, %s) = %d, big.Rat says %d", a, b, got, want)
		}
		if got, want := da.isInteger(), ra.IsInt(); got != want {
			t.Fatalf("isInteger(%s) = %v, big.Rat says %v", a, got, want)
		}
	})
}

// fuzzDecimal parses s if it is one JSON number within the fast path's range (and small enough for
// big.Rat to stay quick).
func fuzzDecimal(s string) (decimal, bool) {
	var sc scratch
	if len(s) > 64 || !sc.scan([]byte(s)) || len(sc.tape) != 1 || sc.tape[0].kind != kNumber ||
		sc.tape[0].start != 0 || int(sc.tape[0].end) != len(s) { // no surrounding whitespace
		return decimal{}, false
	}
	d, ok := parseDecimal([]byte(s))
	if !ok || strings.ContainsAny(s, "eE") && d.point > 2000 || d.point < -2000 {
		return decimal{}, false
	}
	return d, true
}

// FuzzFastFormats checks the fast path's date-time and uuid against the library's own checks.
func FuzzFastFormats(f *testing.F) {
	for _, s := range []string{"2024-06-18T01:30:00Z", "2024-02-29T23:59:60+00:00", "2023-02-29T00:00:00Z",
		"2024-06-18T+1:30:00Z", "2024-06-18T-0:30:00.5z", "2024-06-18t01:30:00.123+08:00", "0000-12-31T23:59:60Z",
		"2024-13-01T00:00:00Z", "2024-06-18T01:30:00+24:00", "2024-06-18T23:59:60-00:01", "2024-06-18 01:30:00Z",
		"3f6c1b8e-2d4a-5e7f-9a1b-6c2d8e4f0a13", "3F6C1B8E-2D4A-5E7F-9A1B-6C2D8E4F0A13", "3f6c1b8e2d4a5e7f9a1b6c2d8e4f0a13",
		"3f6c1b8e-2d4a-5e7f-9a1b-6c2d8e4f0a1g", "é6c1b8e-2d4a-5e7f-9a1b-6c2d8e4f0a1"} {
		f.Add(s)
	}
	dateTime, err := libraryFormat("date-time")
	if err != nil {
		f.Fatal(err)
	}
	uuid, err := libraryFormat("uuid")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := fastDateTime([]byte(s)), dateTime.Validate(s) == nil; got != want {
			t.Errorf("date-time %q: fast %v, library %v", s, got, want)
		}
		if got, want := fastUUID([]byte(s)), uuid.Validate(s) == nil; got != want {
			t.Errorf("uuid %q: fast %v, library %v", s, got, want)
		}
	})
}

func TestFastScanDuplicateKeys(t *testing.T) {
	t.Parallel()
	object := func(n int, extra string) []byte {
		var b strings.Builder
		b.WriteByte('{')
		for i := range n {
			fmt.Fprintf(&b, `"k%d":%d,`, i, i)
		}
		b.WriteString(extra + `}`)
		return []byte(b.String())
	}
	for _, tc := range []struct {
		name string
		data []byte
		dup  bool
	}{
		{"small", []byte(`{"a":1,"b":{"a":2}}`), false},
		{"small duplicate", []byte(`{"a":1,"b":2,"a":3}`), true},
		{"small escaped duplicate", []byte(`{"a":1,"\u0061":3}`), true},
		{"nested duplicate", []byte(`[{"x":{"a":1,"a":1}}]`), true},
		{"large", object(40, `"z":0`), false},
		{"large duplicate", object(40, `"k17":0`), true},
		{"large escaped duplicate", object(40, `"k\u0031\u0037":0`), true},
		{"large near-duplicates", object(40, `"k17 ":0,"k1x":0,"K1":0`), false},
	} {
		var s scratch
		if got := !s.scan(tc.data); got != tc.dup {
			t.Errorf("%s: scan rejects = %v, want %v", tc.name, got, tc.dup)
		}
	}
}
