package unifier

import (
	"strings"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/schema"
)

// The routes the unifier declares are the routes its consumers take: every declared route is
// taken by exactly one lane (its subject, with any partition token), every lane filter takes a
// declared route, and every declared type has a schema.
func TestLanesAreTheDeclaredSubscriptions(t *testing.T) {
	cfg := Config{Replicas: 1, Workers: 2}
	ls := lanes(cfg)
	declared := Service().Subscribes
	if len(declared) == 0 {
		t.Fatal("no declared subscriptions")
	}
	used := map[string]bool{}
	for _, r := range declared {
		if !schema.Default().Has(r.Type) {
			t.Errorf("%s on %s has no schema", r.Type, r.Subject)
		}
		subject := strings.ReplaceAll(r.Subject, "*", "x")
		if strings.HasPrefix(subject, "omni.in.") {
			subject = bus.PartitionedSubject(subject, "k")
		}
		var takers []string
		for _, l := range ls {
			for _, f := range l.FilterSubjects {
				if bus.SubjectMatches(f, subject) {
					takers = append(takers, l.Durable)
					used[base(f)] = true
				}
			}
		}
		if len(takers) != 1 {
			t.Errorf("%s on %s is taken by %d consumers (%v), want 1", r.Type, r.Subject, len(takers), takers)
		}
	}
	for _, l := range ls {
		for _, f := range l.FilterSubjects {
			if !used[base(f)] {
				t.Errorf("%s filters %s, which no declared route is on", l.Durable, f)
			}
		}
	}
	for _, typ := range []string{"omni.tool.logistics.route.completed", "omni.tool.ai.suggest.failed", "omni.tool.crm.lookup.completed"} {
		found := false
		for _, r := range declared {
			found = found || r.Type == typ
		}
		if !found {
			t.Errorf("%s is not declared, but the tool lane takes it", typ)
		}
	}
}

// base is filter f without its partition token.
func base(f string) string {
	if i := strings.LastIndexByte(f, '.'); strings.HasPrefix(f, "omni.in.") && strings.Count(f, ".") == 4 && i > 0 {
		return f[:i]
	}
	return f
}
