package main_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The layering rule of the workspace (DESIGN.md §5), checked over what the go tool resolves
// rather than per-service lint rules:
//
//   - pkg/ and schemas/ never import services/ (nor the bench);
//   - a service never imports another service; only services/omnibus, the all-in-one, composes
//     them (a connector's tests may drive the sandbox: test imports are not checked);
//   - nothing imports the bench, which may import anything;
//   - the test helpers (bustest, pgtest, connectortest, resiliencetest) are imported by tests
//     and by each other only.

const modulePrefix = "github.com/omnibus-dev/omnibus/"

// testHelpers may be imported by _test.go files and by one another, never by production code.
var testHelpers = []string{
	modulePrefix + "pkg/bus/bustest",
	modulePrefix + "pkg/pgtest",
	modulePrefix + "pkg/connector/connectortest",
	modulePrefix + "pkg/resilience/resiliencetest",
}

// layer names the part of the workspace an import path belongs to: "pkg", "schemas", "bench",
// "services/<name>", or "" for a path outside the workspace.
func layer(path string) string {
	rest, ok := strings.CutPrefix(path, modulePrefix)
	if !ok {
		return ""
	}
	first, rest, _ := strings.Cut(rest, "/")
	if first == "services" {
		name, _, _ := strings.Cut(rest, "/")
		return "services/" + name
	}
	return first
}

// layeringViolation says why from may not import to, or returns "" when it may.
func layeringViolation(from, to string) string {
	fl, tl := layer(from), layer(to)
	if fl == "bench" {
		return ""
	}
	switch {
	case tl == "" || fl == tl:
	case tl == "bench":
		return "nothing imports the bench; it may import anything"
	case fl == "pkg" || fl == "schemas":
		if strings.HasPrefix(tl, "services/") {
			return fl + " never imports services; move the shared code into pkg/"
		}
	case fl == "services/omnibus":
	case strings.HasPrefix(fl, "services/") && strings.HasPrefix(tl, "services/"):
		return "services never import each other (only services/omnibus composes them); share code through pkg/"
	}
	if slices.Contains(testHelpers, to) && !slices.Contains(testHelpers, from) {
		return "a test helper: import it from _test.go files only"
	}
	return ""
}

func TestLayeringRule(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		from, to string
		bad      bool
	}{
		{"pkg/bus", "pkg/event", false},
		{"pkg/bus", "services/unifier", true},
		{"schemas", "services/desk/internal/api", true},
		{"services/crm", "pkg/connector", false},
		{"services/crm/internal/x", "services/crm", false},
		{"services/crm", "services/sandbox", true},
		{"services/crm", "services/sandbox/sim", true},
		{"services/omnibus", "services/unifier", false},
		{"services/omnibus/allinone", "services/sandbox", false},
		{"services/omnibus", "bench/internal/loadgen", true},
		{"bench/internal/toolload", "services/omnibus/allinone", false},
		{"bench", "pkg/pgtest", false},
		{"services/unifier", "pkg/pgtest", true},
		{"pkg/connector/connectortest", "pkg/bus/bustest", false},
		{"pkg/connector", "pkg/connector/connectortest", true},
	} {
		got := layeringViolation(modulePrefix+tc.from, modulePrefix+tc.to)
		if (got != "") != tc.bad {
			t.Errorf("%s → %s: violation %q, want bad=%v", tc.from, tc.to, got, tc.bad)
		}
	}
	if got := layeringViolation(modulePrefix+"pkg/bus", "github.com/nats-io/nats.go"); got != "" {
		t.Errorf("a third-party import is not the rule's business: %q", got)
	}
}

// TestLayering applies the rule to every package of every workspace module, as `go list -deps
// work` resolves them (production imports only: tests may import the sandbox and the helpers).
func TestLayering(t *testing.T) {
	t.Parallel()
	root := composeRootDir(t)
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Imports,Module", "work")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	type pkg struct {
		ImportPath string
		Imports    []string
		Module     *struct{ Path string }
	}
	seen := map[string]int{} // packages per layer
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		l := layer(p.ImportPath)
		if l == "" {
			continue
		}
		seen[l]++
		for _, imp := range p.Imports {
			if why := layeringViolation(p.ImportPath, imp); why != "" {
				t.Errorf("%s imports %s: %s", p.ImportPath, imp, why)
			}
		}
	}
	// The rule must have seen every workspace module, or it proved nothing.
	for _, mod := range workspaceModules(t, root) {
		l := layer(modulePrefix + strings.TrimPrefix(mod, "./"))
		if seen[l] == 0 {
			t.Errorf("go list -deps work listed no package of %s (%s)", mod, l)
		}
	}
	t.Log(fmt.Sprint("packages per layer: ", seen))
}
