package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/omnibus-dev/omnibus/schemas"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The examples are schemas/testdata/<type>/{valid,invalid}/*.json, read through schemas.Examples().
// Every invalid/<name>.json has an invalid/<name>.reason with a fragment of the expected error reason.
const examplesDir = "testdata"

type example struct {
	typ    string
	name   string // "<valid|invalid>/<file>"
	valid  bool
	data   []byte
	reason string // invalid only
}

func loadExamples(t testing.TB) []example {
	t.Helper()
	ex := schemas.Examples()
	dirs, err := fs.ReadDir(ex, examplesDir)
	if err != nil {
		t.Fatal(err)
	}
	var out []example
	for _, d := range dirs {
		if !d.IsDir() {
			t.Errorf("%s/%s: want only one folder per type", examplesDir, d.Name())
			continue
		}
		for _, kind := range []string{"valid", "invalid"} {
			dir := path.Join(examplesDir, d.Name(), kind)
			files, err := fs.Glob(ex, dir+"/*.json")
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range files {
				data, err := fs.ReadFile(ex, f)
				if err != nil {
					t.Fatal(err)
				}
				e := example{typ: d.Name(), name: kind + "/" + path.Base(f), valid: kind == "valid", data: data}
				if !e.valid {
					r, err := fs.ReadFile(ex, strings.TrimSuffix(f, ".json")+".reason")
					if err != nil {
						t.Errorf("%s: every invalid example needs a .reason file with a fragment of the expected reason: %v", f, err)
					}
					e.reason = strings.TrimSpace(string(r))
				}
				out = append(out, e)
			}
		}
	}
	return out
}

func TestExamples(t *testing.T) {
	t.Parallel()
	r := Default()
	for _, e := range loadExamples(t) {
		t.Run(e.typ+"/"+e.name, func(t *testing.T) {
			t.Parallel()
			err := r.Validate(e.typ, e.data)
			if e.valid {
				if err != nil {
					t.Fatalf("valid example rejected: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("invalid example: got %v, want an error wrapping ErrInvalid", err)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("got %T, want *ValidationError", err)
			}
			if ve.Type != e.typ {
				t.Errorf("Type = %q, want %q", ve.Type, e.typ)
			}
			if e.reason == "" || !strings.Contains(ve.Reason, e.reason) {
				t.Errorf("Reason = %q, want it to contain %q", ve.Reason, e.reason)
			}
		})
	}
}

func TestEveryTypeHasExamples(t *testing.T) {
	t.Parallel()
	r := Default()
	valid, invalid := map[string]int{}, map[string]int{}
	for _, e := range loadExamples(t) {
		if !r.Has(e.typ) {
			t.Errorf("examples for %q, which has no schema", e.typ)
		}
		if e.valid {
			valid[e.typ]++
		} else {
			invalid[e.typ]++
		}
	}
	for _, typ := range r.Types() {
		if valid[typ] == 0 || invalid[typ] == 0 {
			t.Errorf("%s: %d valid and %d invalid examples, want at least one of each under schemas/%s/%s/",
				typ, valid[typ], invalid[typ], examplesDir, typ)
		}
	}
}

func TestSchemaFiles(t *testing.T) {
	t.Parallel()
	r := Default()
	names, err := fs.Glob(schemas.FS(), "*.json")
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b, err := fs.ReadFile(schemas.FS(), name)
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string]any
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Fatal(err)
			}
			if doc["$schema"] != draft2020 {
				t.Errorf("$schema = %v, want %s", doc["$schema"], draft2020)
			}
			if doc["$id"] != BaseURL+name {
				t.Errorf("$id = %v, want %s", doc["$id"], BaseURL+name)
			}
			if strings.HasSuffix(name, defsExt) {
				return
			}
			typ := strings.TrimSuffix(name, ".json")
			if !strings.HasPrefix(typ, "omni.") || strings.Count(typ, ".") < 3 {
				t.Errorf("type %q: want omni.<area>.<entity>.<verb-past-tense>", typ)
			}
			if doc["type"] != "object" || doc["additionalProperties"] != false {
				t.Errorf("want type object and additionalProperties false at the top level")
			}
			if r.SchemaURL(typ) != BaseURL+name {
				t.Errorf("SchemaURL(%q) = %q", typ, r.SchemaURL(typ))
			}
		})
		if !strings.HasSuffix(name, defsExt) {
			types = append(types, strings.TrimSuffix(name, ".json"))
		}
	}
	if got := r.Types(); !slices.Equal(got, types) {
		t.Errorf("Types() = %v, want %v", got, types)
	}
}

func TestUnknownType(t *testing.T) {
	t.Parallel()
	r := Default()
	const typ = "omni.nothing.here.happened"
	err := r.Validate(typ, []byte(`{}`))
	if !errors.Is(err, ErrUnknownType) || errors.Is(err, ErrInvalid) {
		t.Fatalf("Validate(%q) = %v, want ErrUnknownType", typ, err)
	}
	if r.Has(typ) || r.SchemaURL(typ) != "" {
		t.Errorf("Has/SchemaURL for an unknown type: %v %q", r.Has(typ), r.SchemaURL(typ))
	}
}

func TestValidateReasons(t *testing.T) {
	t.Parallel()
	r := Default()
	const typ = "omni.channel.message.received"
	for _, tc := range []struct {
		name, data, want string
	}{
		{"empty", ``, "data: not a JSON document"},
		{"not json", `{"channel":`, "data: not a JSON document"},
		{"trailing data", `{} {}`, "data: not a JSON document"},
		{"array", `[]`, "data: got array, want object"},
		{"missing", `{}`, "data: missing properties 'channel', 'channel_message_id', 'from', 'message', 'sent_at'"},
		{"nested", `{"channel":"sms","channel_message_id":"1","from":{"kind":"phone"},"message":{"type":"text","text":"hi"},"sent_at":"2024-06-18T01:30:00Z"}`,
			"data/from: missing property 'value'"},
		{"no value echoed", `{"channel":"sms","channel_message_id":"1","from":{"kind":"phone","value":"+8613800138000"},"message":{"type":"text","text":"hi"},"sent_at":"+8613800138000"}`,
			`data/sent_at: not a valid "date-time"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := r.Validate(typ, []byte(tc.data))
			var ve *ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want a *ValidationError wrapping ErrInvalid", err)
			}
			if ve.Reason != tc.want {
				t.Errorf("Reason = %q, want %q", ve.Reason, tc.want)
			}
			if strings.Contains(err.Error(), "+8613800138000") {
				t.Errorf("error quotes the offending value: %v", err)
			}
			if !strings.HasPrefix(err.Error(), "schema: invalid "+typ+": ") {
				t.Errorf("Error() = %q", err.Error())
			}
		})
	}
}

func TestDefaultIsShared(t *testing.T) {
	t.Parallel()
	if a, b := Default(), Default(); a != b {
		t.Fatal("Default() returned two registries")
	}
}

func TestConcurrentValidate(t *testing.T) {
	t.Parallel()
	r := Default()
	exs := loadExamples(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				for _, e := range exs {
					if err := r.Validate(e.typ, e.data); (err == nil) != e.valid {
						t.Errorf("%s/%s: %v", e.typ, e.name, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

func TestNoNetworkLoads(t *testing.T) {
	t.Parallel()
	fsys := fstest.MapFS{
		"omni.test.thing.happened.json": {Data: []byte(`{"$schema":"https://json-schema.org/draft/2020-12/schema",` +
			`"$id":"https://omnibus.dev/schemas/omni.test.thing.happened.json","$ref":"https://example.com/x.json"}`)},
	}
	if _, err := newRegistry(fsys); err == nil || !strings.Contains(err.Error(), "not an embedded schema") {
		t.Fatalf("newRegistry with a remote $ref: err = %v, want the load refused", err)
	}
	fsys = fstest.MapFS{
		"omni.test.thing.happened.json": {Data: []byte(`{"$schema":"https://json-schema.org/draft/2020-12/schema","$id":"https://example.com/x.json"}`)},
	}
	if _, err := newRegistry(fsys); err == nil || !strings.Contains(err.Error(), "$id") {
		t.Fatalf("newRegistry with a foreign $id: err = %v, want an $id error", err)
	}
}

// --- AsyncAPI

func TestAsyncAPICoversEveryType(t *testing.T) {
	t.Parallel()
	r := Default()
	types, err := AsyncAPITypes()
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range r.Types() {
		if !slices.Contains(types, typ) {
			t.Errorf("%s has a schema but no message in %s with x-cloudevents-type: %s", typ, AsyncAPIFile, typ)
		}
	}
	for _, typ := range types {
		if !r.Has(typ) {
			t.Errorf("%s names x-cloudevents-type %s, which has no schema", AsyncAPIFile, typ)
		}
	}
}

func TestAsyncAPIMessages(t *testing.T) {
	t.Parallel()
	doc, err := readAsyncAPI()
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Components.Messages) == 0 {
		t.Fatal("no components.messages")
	}
	check := func(where string, m asyncAPIMessage) {
		if m.Ref != "" {
			name, ok := strings.CutPrefix(m.Ref, "#/components/messages/")
			if _, found := doc.Components.Messages[name]; !ok || !found {
				t.Errorf("%s: $ref %q does not name a components message", where, m.Ref)
			}
			return
		}
		var ref string
		if m.Payload != nil && m.Payload.Schema != nil {
			ref = m.Payload.Schema.Ref
		}
		if ref != "" {
			if _, err := fs.Stat(schemas.FS(), path.Clean(ref)); err != nil || path.Dir(path.Clean(ref)) != "." {
				t.Errorf("%s: payload $ref %q is not a schema file beside %s", where, ref, AsyncAPIFile)
			}
			if m.Payload.SchemaFormat != "application/schema+json;version=draft-2020-12" {
				t.Errorf("%s: schemaFormat %q", where, m.Payload.SchemaFormat)
			}
		}
		if m.CEType != "" && ref != "./"+m.CEType+".json" {
			t.Errorf("%s: x-cloudevents-type %s with payload $ref %q, want ./%s.json", where, m.CEType, ref, m.CEType)
		}
	}
	for name, m := range doc.Components.Messages {
		check("components.messages."+name, m)
	}
	for name, ch := range doc.Channels {
		for mname, m := range ch.Messages {
			check("channels."+name+".messages."+mname, m)
		}
	}
}

func TestAsyncAPIStreams(t *testing.T) {
	t.Parallel()
	doc, err := readAsyncAPI()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"OMNI_IN", "OMNI_OUT", "OMNI_TOOL", "OMNI_DESK", "OMNI_AUDIT", "OMNI_DLQ"} {
		s, ok := doc.Streams[want]
		if !ok || s.Name != want || len(s.Subjects) == 0 || s.Retention == "" || s.MaxAge == "" {
			t.Errorf("x-streams.%s missing or incomplete: %+v", want, s)
		}
	}
	for name, ch := range doc.Channels {
		if ch.Stream == "" {
			// A live channel (core NATS, at most once): under omni.live. and stored by no stream.
			if !strings.HasPrefix(ch.Address, "omni.live.") {
				t.Errorf("channels.%s: no x-stream, and %s is not a live subject (omni.live.>)", name, ch.Address)
			}
			for sname, s := range doc.Streams {
				if slices.ContainsFunc(s.Subjects, func(subj string) bool { return subjectCovers(subj, ch.Address) }) {
					t.Errorf("channels.%s: live address %s is stored by %s", name, ch.Address, sname)
				}
			}
			continue
		}
		s, ok := doc.Streams[ch.Stream]
		if !ok {
			t.Errorf("channels.%s: x-stream %q is not in x-streams", name, ch.Stream)
			continue
		}
		if !slices.ContainsFunc(s.Subjects, func(subj string) bool { return subjectCovers(subj, ch.Address) }) {
			t.Errorf("channels.%s: address %s is not stored by %s (subjects %v)", name, ch.Address, ch.Stream, s.Subjects)
		}
	}
}

// subjectCovers reports whether NATS subject filter f matches every subject of address a, whose
// {parameters} stand for one token each.
func subjectCovers(f, a string) bool {
	ft, at := strings.Split(f, "."), strings.Split(a, ".")
	for i, tok := range ft {
		if tok == ">" {
			return len(at) > i
		}
		if i >= len(at) {
			return false
		}
		if tok != "*" && tok != at[i] {
			return false
		}
	}
	return len(ft) == len(at)
}

// TestAsyncAPIValidatesAgainstSpec validates asyncapi.yaml against the official AsyncAPI 3.0.0 JSON
// Schema (draft-07, vendored from @asyncapi/specs, see testdata/README). Its definitions carry their own
// $ids (http://asyncapi.com/definitions/3.0.0/...), which the compiler resolves inside the document;
// any other load is refused.
func TestAsyncAPIValidatesAgainstSpec(t *testing.T) {
	t.Parallel()
	f, err := os.Open("testdata/asyncapi-3.0.0.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	spec, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	const specURL = "http://asyncapi.com/definitions/3.0.0/asyncapi.json"
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7)
	c.UseLoader(refuseLoader{})
	if err := c.AddResource(specURL, spec); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(specURL)
	if err != nil {
		t.Fatal(err)
	}
	j, err := asyncAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(doc); err != nil {
		t.Fatalf("%s does not conform to AsyncAPI 3.0.0:\n%v", AsyncAPIFile, err)
	}

	// The spec schema must be able to fail: a document missing info is rejected.
	bad, err := jsonschema.UnmarshalJSON(strings.NewReader(`{"asyncapi":"3.0.0","channels":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(bad); err == nil {
		t.Fatal("a document without info passed the AsyncAPI 3.0.0 schema")
	}
}

// --- benchmark

// BenchmarkValidate compares, per event type, the generic validator alone ("generic") with
// Validate, which tries the fast path first ("fast").
func BenchmarkValidate(b *testing.B) {
	r := Default()
	for _, bc := range []struct{ typ, example string }{
		{"omni.desk.message.added", "inbound-wechatkf-text.json"},
		{"omni.channel.message.received", "wechatkf-text-openid.json"},
		{"omni.tool.crm.lookup.completed", "salesforce-found.json"},
	} {
		data, err := fs.ReadFile(schemas.Examples(), examplesDir+"/"+bc.typ+"/valid/"+bc.example)
		if err != nil {
			b.Fatal(err)
		}
		e := r.types[bc.typ]
		for _, v := range []struct {
			name     string
			validate func(string, []byte) error
		}{
			{"generic", e.validate},
			{"fast", r.Validate},
		} {
			b.Run(bc.typ+"/"+v.name, func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				b.ReportAllocs()
				for b.Loop() {
					if err := v.validate(bc.typ, data); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkValidateParallel(b *testing.B) {
	r := Default()
	const typ = "omni.channel.message.received"
	data, err := fs.ReadFile(schemas.Examples(), examplesDir+"/"+typ+"/valid/wechatkf-text-openid.json")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := r.Validate(typ, data); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// TestValidateHugeNumberIsInvalid: a number the validator library cannot compare (it panics on
// an exponent beyond about 10^6 against minimum/maximum) is an invalid document with a reason,
// never a crash of the consumer validating outside input.
func TestValidateHugeNumberIsInvalid(t *testing.T) {
	t.Parallel()
	data := []byte(`{"channel":"wechatkf","channel_message_id":"m1","from":{"kind":"wechat_openid","value":"oWuP25B4J1xV9yD3hG2kLmNpQrSt"},` +
		`"message":{"type":"location","location":{"latitude":1e1000001,"longitude":113.32}},"sent_at":"2024-06-18T09:22:00+08:00"}`)
	err := Default().Validate("omni.channel.message.received", data)
	var ve *ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) || ve.Reason == "" {
		t.Fatalf("want a ValidationError, got %v", err)
	}
}
