package main_test

import (
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/omnibus-dev/omnibus/pkg/service"
	omnibus "github.com/omnibus-dev/omnibus/services/omnibus"
)

// TestComposeConfiguresEveryConnector: every optional service the compose stack runs on its own
// is configured there (a standalone service refuses to start unconfigured).
func TestComposeConfiguresEveryConnector(t *testing.T) {
	t.Parallel()
	byName := map[string]service.Service{}
	for _, s := range omnibus.Services() {
		byName[s.Name] = s
	}
	forEachComposeProject(t, func(t *testing.T, _ string, p *types.Project) {
		checked := 0
		for name, svc := range p.Services {
			arg, ok := serviceArg(svc)
			s, known := byName[arg]
			if !ok || !known || s.Configured == nil {
				continue
			}
			checked++
			env := func(k string) (string, bool) {
				if v := svc.Environment[k]; v != nil {
					return *v, true
				}
				return "", false
			}
			if ok, vars := s.Configured(env); !ok {
				t.Errorf("%s: runs %s unconfigured: set one of %s", name, arg, strings.Join(vars, ", "))
			}
		}
		if checked == 0 {
			t.Error("no optional service found in the compose stack")
		}
	})
}
