package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestRunFlags: `omnibus --rebuild` and `omnibus run --rebuild` are the run command with its flag;
// what run does not know is refused before anything starts.
func TestRunFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"run", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"run", "--rebuild", "now"}, `run: unexpected argument "now"`},
		{[]string{"--rebuild=maybe"}, "invalid boolean value"},
	} {
		var out, errOut bytes.Buffer
		if code := run(tc.args, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("omnibus %s: exit %d, stderr %q; want a failure saying %q", strings.Join(tc.args, " "), code, errOut.String(), tc.want)
		}
	}
	var out bytes.Buffer
	if code := run([]string{"--help"}, &out, &out); code != 0 || !strings.Contains(out.String(), "--rebuild") {
		t.Errorf("omnibus --help: exit %d, %q; want the usage with --rebuild", code, out.String())
	}
}
