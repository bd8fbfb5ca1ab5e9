package schema

import (
	"fmt"
	"testing"
	"testing/fstest"
)

// TestFastPathKeywords pins every keyword the fast path implements at its boundaries, on small
// schemas: the generic validator must give the expected verdict, and the fast path the same one,
// except where it leaves the input to the generic validator by design (it must then say "not valid").
func TestFastPathKeywords(t *testing.T) {
	t.Parallel()
	type check struct {
		data       string
		valid      bool // the generic validator's verdict
		fastDefers bool // the fast path leaves it to the generic validator
	}
	ok := func(data string) check { return check{data: data, valid: true} }
	bad := func(data string) check { return check{data: data} }
	// deferred: the fast path leaves it to the generic validator (whose verdict is valid).
	deferred := func(data string, valid bool) check { return check{data: data, valid: valid, fastDefers: true} }

	cases := []struct {
		name, schema string
		checks       []check
	}{
		{"string length in code points", `{"type":"string","minLength":2,"maxLength":3}`, []check{
			ok(`"ab"`), ok(`"abc"`), bad(`"a"`), bad(`"abcd"`), ok(`"é😀"`), ok(`"\u00e9\u00e9\u00e9"`),
			bad(`"éééé"`), ok(`"\ud83d\ude00\ud83d\ude00"`), ok(`"\n\""`), bad(`null`), bad(`3`),
		}},
		{"length keywords ignore other types", `{"minLength":2}`, []check{ok(`1`), ok(`[]`), bad(`"a"`)}},
		{"integer bounds", `{"type":"integer","minimum":-1,"maximum":2}`, []check{
			ok(`1.0`), ok(`2`), ok(`2.0`), ok(`20e-1`), ok(`0.2e1`), ok(`1e0`), ok(`-0`), ok(`-1`), ok(`-1.000`),
			bad(`2.0000000000000001`), bad(`3`), bad(`-1.5`), bad(`1.5`), bad(`-2`), bad(`1e400`), bad(`"1"`),
		}},
		{"number bounds are exact", `{"type":"number","minimum":-90,"maximum":90}`, []check{
			ok(`90`), ok(`-90.0`), ok(`9e1`), ok(`0.9e2`), ok(`89.99999999999999999999`), ok(`0`),
			bad(`90.0000000000000001`), bad(`-90.00000000000000001`), bad(`901e-1`), bad(`1e400`), bad(`"90"`),
		}},
		{"decimal bounds", `{"minimum":0.1,"maximum":1e1}`, []check{ok(`0.1`), ok(`10`), ok(`1e-1`), bad(`0.0999`), bad(`10.5`), ok(`"x"`)}},
		{"integer type", `{"type":"integer"}`, []check{ok(`1e2`), ok(`1.5e1`), ok(`-0.0`), bad(`1.55e1`), bad(`1e-1`), bad(`true`)}},
		{"type sets", `{"type":["string","null"]}`, []check{ok(`null`), ok(`"x"`), bad(`1`), bad(`false`), bad(`{}`)}},
		{"enum", `{"enum":["a","b",null]}`, []check{ok(`"a"`), ok(`"\u0061"`), ok(`null`), bad(`"c"`), bad(`"A"`), bad(`1`), bad(`[]`)}},
		{"const false", `{"const":false}`, []check{ok(`false`), bad(`true`), bad(`0`), bad(`null`), bad(`"false"`)}},
		{"array rules", `{"type":"array","items":{"type":"string"},"minItems":1,"maxItems":2,"uniqueItems":true}`, []check{
			ok(`["a"]`), ok(`["a","b"]`), bad(`[]`), bad(`["a","a"]`), bad(`["a","\u0061"]`), bad(`["a","b","c"]`), bad(`[1]`),
		}},
		{"maxItems 0", `{"maxItems":0}`, []check{ok(`[]`), bad(`[null]`), ok(`{}`)}},
		{"uniqueItems compares values", `{"uniqueItems":true}`, []check{
			bad(`[1,1.0]`), bad(`[0,-0]`), bad(`[1e2,100]`), ok(`[1,"1"]`), ok(`[true,false]`), bad(`[null,null]`),
			bad(`[true,true]`), ok(`[0.1,0.10000000000000001]`),
			// Containers are left to the generic validator.
			deferred(`[[1],[2]]`, true), bad(`[{},{}]`),
		}},
		{"object rules", `{"type":"object","properties":{"a":{"type":"string"}},"required":["a","b"],"additionalProperties":false}`, []check{
			bad(`{"a":"x","b":1}`), bad(`{"a":"x"}`), bad(`{"b":1}`), bad(`[]`),
		}},
		{"additionalProperties schema, maxProperties, propertyNames",
			`{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":{"type":"integer"},"maxProperties":2,"propertyNames":{"maxLength":2}}`,
			[]check{
				ok(`{"a":"x","bb":1}`), ok(`{}`), bad(`{"a":"x","bb":1.5}`), bad(`{"a":1}`), bad(`{"a":"x","b":1,"c":2}`),
				bad(`{"ccc":1}`), ok(`{"\u00e9\u00e9":1}`), bad(`{"\u00e9\u00e9\u00e9":1}`),
			}},
		{"escaped keys", `{"required":["a/b"],"properties":{"a/b":{"const":"x"}}}`, []check{
			ok(`{"a\/b":"x"}`), ok(`{"\u0061/b":"\u0078"}`), bad(`{"a\/b":"y"}`), bad(`{"a\\/b":"x"}`),
		}},
		{"dependentRequired", `{"dependentRequired":{"x":["y"]}}`, []check{ok(`{}`), bad(`{"x":1}`), ok(`{"x":1,"y":2}`), ok(`{"y":1}`)}},
		{"if then else", `{"if":{"properties":{"k":{"const":"a"}},"required":["k"]},"then":{"required":["a"]},"else":{"required":["b"]}}`, []check{
			ok(`{"k":"a","a":1}`), bad(`{"k":"a","b":1}`), ok(`{"k":"z","b":1}`), ok(`{"b":1}`), bad(`{"k":"z","a":1}`), ok(`5`),
		}},
		{"if without else", `{"if":{"const":"a"},"then":false}`, []check{ok(`"b"`), ok(`1`), bad(`"a"`)}},
		{"if over what the fast path cannot decide", `{"if":{"uniqueItems":true},"then":false}`, []check{
			// Neither branch may be taken when "if" is unknown.
			bad(`[[1],[2]]`), deferred(`[[1],[1]]`, true), bad(`[1,2]`), ok(`[1,1]`),
		}},
		{"anyOf", `{"anyOf":[{"type":"string"},{"type":"integer","minimum":5}]}`, []check{ok(`"x"`), ok(`5`), bad(`4`), bad(`null`)}},
		{"allOf", `{"allOf":[{"maxLength":2},{"minLength":2}]}`, []check{ok(`"ab"`), bad(`"a"`), bad(`"abc"`)}},
		{"$ref with siblings", `{"$defs":{"s":{"type":"string"}},"$ref":"#/$defs/s","maxLength":1}`, []check{ok(`"a"`), bad(`"ab"`), bad(`1`)}},
		{"boolean schemas", `{"properties":{"t":true,"f":false}}`, []check{ok(`{"t":[1,{"x":null}]}`), bad(`{"f":null}`), ok(`{}`)}},
		{"pattern is unanchored and ignores other types", `{"pattern":"b"}`, []check{ok(`"abc"`), bad(`"ac"`), ok(`1`)}},
		{"pattern on decoded text", `{"pattern":"^\\p{Han}+$"}`, []check{ok(`"你好"`), ok(`"\u4f60"`), bad(`"a"`)}},
		{"date-time", `{"format":"date-time"}`, []check{
			ok(`"2024-02-29T23:59:60Z"`), ok(`"2024-06-18t01:30:00.5+08:00"`), ok(`5`),
			bad(`"2023-02-29T00:00:00Z"`), bad(`"2024-06-18T01:30:00"`), bad(`"2024-06-18 01:30:00Z"`), bad(`"2024-06-18T12:30:60Z"`),
			// The library reads the hour with strconv.Atoi: it accepts a sign.
			ok(`"2024-06-18T+1:30:00Z"`), ok(`"2024-06-18T-0:30:00Z"`),
		}},
		{"uuid", `{"format":"uuid"}`, []check{ok(`"3F6C1B8E-2d4a-5e7f-9a1b-6c2d8e4f0a13"`), bad(`"3f6c1b8e2d4a5e7f9a1b6c2d8e4f0a13"`), bad(`"3f6c1b8e-2d4a-5e7f-9a1b-6c2d8e4f0a1g"`)}},
		{"email", `{"format":"email"}`, []check{ok(`"a.b@example.cn"`), bad(`"a@"`), bad(`"a..b@x.y"`)}},
		{"uri", `{"format":"uri"}`, []check{ok(`"https://x.example/a?b#c"`), bad(`"/relative"`), bad(`"http://[::1"`)}},
		{"unknown formats are ignored", `{"format":"no-such-format"}`, []check{ok(`"anything"`)}},
		{"duplicate keys", `{"properties":{"a":{"const":"x"}}}`, []check{
			// encoding/json keeps the last value; the fast path leaves duplicates alone.
			deferred(`{"a":"y","a":"x"}`, true), bad(`{"a":"x","a":"y"}`),
		}},
		{"invalid UTF-8 and lone surrogates", `{"type":"string"}`, []check{
			deferred("\"a\xffb\"", true), deferred(`"\ud800"`, true), deferred(`"\udc00\ud800"`, true), ok(`"\ud83d\ude00"`),
		}},
		{"not JSON", `true`, []check{bad(``), bad(`{`), bad(`{} {}`), bad(`01`), bad(`1.`), bad(`-`), bad(`"\x"`), bad("\"\x01\""),
			bad(`[1,]`), bad(`{"a":1,}`), bad(`nul`), bad("\ufeff{}"), ok(" {\"a\" : [ 1 , 2 ] }\r\n\t")}},
		{"numbers beyond big.Rat", `{"type":"integer"}`, []check{
			// big.Rat refuses 10^1000001, so the library calls this integer not an integer.
			deferred(`1e1000001`, false), ok(`1e100000`),
		}},
	}

	fsys := fstest.MapFS{}
	for i, c := range cases {
		name := fmt.Sprintf("k%d.json", i)
		schema := `{"$schema":"https://json-schema.org/draft/2020-12/schema","$id":"` + BaseURL + name + `",` + c.schema[1:]
		if c.schema == "true" {
			schema = `{"$schema":"https://json-schema.org/draft/2020-12/schema","$id":"` + BaseURL + name + `"}`
		}
		fsys[name] = &fstest.MapFile{Data: []byte(schema)}
	}
	r, err := newRegistry(fsys)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			typ := fmt.Sprintf("k%d", i)
			for _, ch := range c.checks {
				gen, panicked := genericValid(r, typ, []byte(ch.data))
				if gen != ch.valid {
					t.Errorf("%s: the generic validator says valid=%v (panicked=%v), the test expects %v", ch.data, gen, panicked, ch.valid)
				}
				want := ch.valid && !ch.fastDefers
				if fast := fastValid(t, r, typ, []byte(ch.data)); fast != want {
					t.Errorf("%s: the fast path says valid=%v, want %v", ch.data, fast, want)
				}
			}
		})
	}
}
