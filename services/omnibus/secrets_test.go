package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/config"
	"github.com/omnibus-dev/omnibus/services/omnibus/allinone"
	"github.com/omnibus-dev/omnibus/services/payment"
	"github.com/omnibus-dev/omnibus/services/sandbox"
	"github.com/omnibus-dev/omnibus/services/webchat"
	"github.com/omnibus-dev/omnibus/services/wechatkf"
)

// TestDemoSecretsPerDataDir: the demo's shared secrets are generated per data dir, kept in it
// (0600) across restarts, never the source's constants, and each in the form its connector
// accepts.
func TestDemoSecretsPerDataDir(t *testing.T) {
	t.Parallel()
	dirA, dirB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	a, err := allinone.DemoSecrets(dirA, sandbox.NewSecrets)
	if err != nil {
		t.Fatal(err)
	}
	b, err := allinone.DemoSecrets(dirB, sandbox.NewSecrets)
	if err != nil {
		t.Fatal(err)
	}
	again, err := allinone.DemoSecrets(dirA, sandbox.NewSecrets) // a restart on dirA
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range sandbox.SecretNames {
		switch {
		case a[k] == "":
			t.Errorf("%s: not generated", k)
		case a[k] == b[k]:
			t.Errorf("%s: two data dirs share %q", k, a[k])
		case again[k] != a[k]:
			t.Errorf("%s: changed across a restart", k)
		case a[k] == sandbox.Credentials[k]:
			t.Errorf("%s: the source's constant", k)
		}
	}
	fi, err := os.Stat(filepath.Join(dirA, allinone.SecretsFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", allinone.SecretsFile, fi.Mode().Perm())
	}
	// What the all-in-one overlays: the generated values win over the sandbox's fixtures, and
	// the connectors accept them.
	env := simulationEnv("http://127.0.0.1:1", a)
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for _, k := range sandbox.SecretNames {
		if env[k] != a[k] {
			t.Errorf("%s: the overlay has %q, not the data dir's secret", k, env[k])
		}
	}
	for _, c := range []any{&webchat.Config{}, &wechatkf.Config{}, &payment.Config{}} {
		if err := config.Load(c, lookup); err != nil {
			t.Errorf("%T refuses the generated secrets: %v", c, err)
		}
	}
	// A secret added by a later version is added to the file; the others stay.
	if err := os.WriteFile(filepath.Join(dirA, allinone.SecretsFile), []byte(`{"WEBCHAT_SECRET":"kept-from-an-older-run-0001"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	older, err := allinone.DemoSecrets(dirA, sandbox.NewSecrets)
	if err != nil {
		t.Fatal(err)
	}
	if older["WEBCHAT_SECRET"] != "kept-from-an-older-run-0001" || older["SMS_WEBHOOK_TOKEN"] == "" {
		t.Errorf("an older file: WEBCHAT_SECRET %q, SMS_WEBHOOK_TOKEN %q", older["WEBCHAT_SECRET"], older["SMS_WEBHOOK_TOKEN"])
	}
	if fi, err := os.Stat(filepath.Join(dirA, allinone.SecretsFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the rewritten file: %v %v, want mode 0600", fi.Mode(), err)
	}
}
