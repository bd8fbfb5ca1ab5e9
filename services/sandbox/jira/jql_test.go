package jira

import (
	"strings"
	"testing"
)

// FuzzParseJQL: the search's JQL parser (the connector's query, or anything a client sends) never
// panics, and what it accepts is one of the forms it documents.
func FuzzParseJQL(f *testing.F) {
	for _, q := range []string{
		`project = "CS" AND labels = "omnibus-conv-c1d2e3f4-a5b6-5c7d-8e9f-0a1b2c3d4e5f" ORDER BY key ASC`,
		`project = CS AND key = CS-1`,
		`labels = "a \"quoted\" \\ label" order by created desc`,
		`ORDER BY key`,
		`summary ~ "x"`,
		`project = "CS`,
		`project = CS OR labels = x`,
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		clauses, ord, err := parseJQL(q)
		if err != nil {
			return
		}
		if len(clauses) == 0 {
			t.Fatalf("%q: accepted without a restriction", q)
		}
		for _, c := range clauses {
			if c.field != "project" && c.field != "labels" && c.field != "key" {
				t.Fatalf("%q: clause on %q", q, c.field)
			}
		}
		switch ord.field {
		case "", "key", "issuekey", "id", "created":
		default:
			t.Fatalf("%q: order by %q", q, ord.field)
		}
		if ord.field != "" && !strings.Contains(strings.ToUpper(q), "ORDER") {
			t.Fatalf("%q: an order that is not in the query", q)
		}
	})
}
