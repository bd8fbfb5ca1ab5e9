package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/pii"
)

// TestKeysCommand: init creates a 0600 keyset and refuses to overwrite it; rotate adds a primary
// that the file then names, old ciphertexts still open and blind indexes stay; rewrap wraps the
// file in a key-encryption key.
func TestKeysCommand(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("OMNIBUS_DATA_DIR", dir)
	t.Setenv("PII_KEYSET_FILE", "")
	t.Setenv("PII_KEK_URI", "")
	file := filepath.Join(dir, "pii-keyset.json")
	var out, errOut bytes.Buffer
	if code := run([]string{"keys", "init"}, &out, &errOut); code != 0 {
		t.Fatalf("keys init = %d: %s", code, errOut.String())
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("keyset %v, %v", fi, err)
	}
	before, err := pii.LoadFile(file, "")
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := before.Encrypt("+8613800138000")
	if code := run([]string{"keys", "init"}, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "exists") {
		t.Fatalf("a second keys init = %d: %s", code, errOut.String())
	}
	out.Reset()
	if code := run([]string{"keys", "rotate"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "new primary key") {
		t.Fatalf("keys rotate = %d: %s %s", code, out.String(), errOut.String())
	}
	after, err := pii.LoadFile(file, "")
	if err != nil || after.PrimaryKeyID() == before.PrimaryKeyID() || len(after.KeyIDs()) != 2 {
		t.Fatalf("after rotate: %v %v", after.KeyIDs(), err)
	}
	if got, err := after.Decrypt(tok); err != nil || got != "+8613800138000" || after.BlindIndex("phone", got) != before.BlindIndex("phone", got) {
		t.Fatalf("old token after rotate = %q, %v", got, err)
	}
	t.Setenv("OMNIBUS_TEST_KEK", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	if code := run([]string{"keys", "rewrap", "--to-kek", "env://OMNIBUS_TEST_KEK"}, &out, &errOut); code != 0 {
		t.Fatalf("keys rewrap = %d: %s", code, errOut.String())
	}
	if _, err := pii.LoadFile(file, ""); err == nil {
		t.Fatal("the rewrapped file still reads without its key-encryption key")
	}
	out.Reset()
	if code := run([]string{"keys", "show", "--kek", "env://OMNIBUS_TEST_KEK"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "primary") {
		t.Fatalf("keys show = %d: %s %s", code, out.String(), errOut.String())
	}
}
