// Package schemas embeds the JSON Schemas (draft 2020-12) of every omnibus CloudEvents type and the
// AsyncAPI 3 document that lists every subject. It has no dependencies so any module can embed it.
//
// Layout:
//   - "<type>.json": the schema of the data of CloudEvents type <type>; its $id is
//     https://omnibus.dev/schemas/<type>.json; every service serves it at /schemas/<type>.json, the
//     URL events name as their dataschema (see pkg/schema.Registry.Handler).
//   - "*.defs.json": shared $defs referenced by the type schemas (not event types).
//   - "asyncapi.yaml": subjects, streams, producers and consumers of every type.
//   - "testdata/<type>/valid/*.json" and "testdata/<type>/invalid/*.json": example data payloads;
//     every invalid/<name>.json has an invalid/<name>.reason holding a fragment of the expected
//     validation error. The tests of github.com/omnibus-dev/omnibus/pkg/schema read them through
//     [Examples] and require at least one valid and one invalid example per type.
package schemas

//go:generate go run ./internal/gentypes

import (
	"embed"
	"io/fs"
	"sort"
	"strings"
)

//go:embed *.json asyncapi.yaml
var files embed.FS

//go:embed testdata
var examples embed.FS

// FS returns the embedded schema files: one "<type>.json" per CloudEvents type, the shared
// "*.defs.json" files, and "asyncapi.yaml".
func FS() embed.FS { return files }

// Examples returns the embedded example payloads under "testdata/<type>/{valid,invalid}/".
// They exist for tests (this package's and other modules'), which cannot read another module's
// files by relative path.
func Examples() embed.FS { return examples }

// Types returns every CloudEvents type that has a schema here, sorted: the names of the
// "<type>.json" files.
func Types() []string {
	names, _ := fs.Glob(files, "omni.*.json") // a constant, valid pattern
	out := make([]string, 0, len(names))
	for _, n := range names {
		if t := strings.TrimSuffix(n, ".json"); !strings.HasSuffix(t, ".defs") {
			out = append(out, t)
		}
	}
	sort.Strings(out)
	return out
}

// TypesMatching returns the types of Types that match pattern, a NATS-style pattern over the
// type's dot-separated tokens ("*" one token, ">" the rest): "omni.tool.*.*.completed" is every
// tool's completed result.
func TypesMatching(pattern string) []string {
	var out []string
	for _, t := range Types() {
		if matches(strings.Split(pattern, "."), strings.Split(t, ".")) {
			out = append(out, t)
		}
	}
	return out
}

func matches(pat, toks []string) bool {
	for i, p := range pat {
		switch {
		case p == ">":
			return i < len(toks)
		case i >= len(toks):
			return false
		case p != "*" && p != toks[i]:
			return false
		}
	}
	return len(pat) == len(toks)
}
