package desk

import (
	"strings"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/bus"
)

// The routes the desk declares are the routes its consumers take: every declared route is taken
// by exactly one durable consumer (or, under omni.live., by the desk's live subscription), and
// every consumer filter takes a declared route.
func TestConsumersAreTheDeclaredSubscriptions(t *testing.T) {
	cons := consumers("desk")
	used := map[string]bool{}
	for _, r := range Service().Subscribes {
		if strings.HasPrefix(r.Subject, "omni.live.") {
			continue
		}
		subject := strings.ReplaceAll(r.Subject, "*", "x")
		if strings.HasPrefix(subject, "omni.in.") {
			subject = bus.PartitionedSubject(subject, "k")
		}
		var takers []string
		for _, c := range cons {
		filters:
			for _, f := range c.FilterSubjects {
				for _, x := range bus.ExpandInbound([]string{f}) { // what Subscribe asks the server for
					if bus.SubjectMatches(x, subject) {
						takers = append(takers, c.Durable)
						used[f] = true
						break filters
					}
				}
			}
		}
		if len(takers) != 1 {
			t.Errorf("%s on %s is taken by %d consumers (%v), want 1", r.Type, r.Subject, len(takers), takers)
		}
	}
	for _, c := range cons {
		for _, f := range c.FilterSubjects {
			if !used[f] {
				t.Errorf("%s filters %s, which no declared route is on", c.Durable, f)
			}
		}
	}
}
