package pii_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/pii"
)

func newKeys(t *testing.T) *pii.Keys {
	t.Helper()
	k, err := pii.NewKeys()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKeysSealOpenAndRotation(t *testing.T) {
	t.Parallel()
	old := newKeys(t)
	tok, err := old.Encrypt(idCard)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, pii.Prefix) || strings.Contains(tok, idCard) || !pii.IsCiphertext(tok) {
		t.Fatalf("token %q", tok)
	}
	if id, err := pii.KeyIDOf(tok); err != nil || id != old.PrimaryKeyID() {
		t.Fatalf("KeyIDOf = %d, %v; want %d", id, err, old.PrimaryKeyID())
	}
	if tok2, _ := old.Encrypt(idCard); tok == tok2 {
		t.Fatal("two encryptions of one value are equal: the nonce is not random")
	}
	rotated, err := old.Rotated()
	if err != nil {
		t.Fatal(err)
	}
	if rotated.PrimaryKeyID() == old.PrimaryKeyID() || len(rotated.KeyIDs()) != 2 || rotated.KeyIDs()[1] != old.PrimaryKeyID() {
		t.Fatalf("rotated primary %d, keys %v; old primary %d", rotated.PrimaryKeyID(), rotated.KeyIDs(), old.PrimaryKeyID())
	}
	if got, err := rotated.Decrypt(tok); err != nil || got != idCard {
		t.Fatalf("decrypt an old token after rotation = %q, %v", got, err)
	}
	if !rotated.NeedsRotation(tok) {
		t.Fatal("a token of the old primary must need rotation")
	}
	fresh, _ := rotated.Encrypt(idCard)
	if id, _ := pii.KeyIDOf(fresh); id != rotated.PrimaryKeyID() || rotated.NeedsRotation(fresh) {
		t.Fatalf("fresh token key %d", id)
	}
	if _, err := old.Decrypt(fresh); !errors.Is(err, pii.ErrDecrypt) {
		t.Fatalf("decrypt with the key missing: %v, want ErrDecrypt", err)
	}
	// The blind index survives rotation; another keyset's does not match.
	if old.BlindIndex("phone", "+8613800138000") != rotated.BlindIndex("phone", "+8613800138000") {
		t.Fatal("blind index changed with AEAD rotation")
	}
	if newKeys(t).BlindIndex("phone", "+8613800138000") == old.BlindIndex("phone", "+8613800138000") {
		t.Fatal("two keysets give the same blind index")
	}
	if old.BlindIndex("phone", "+8613800138000") == old.BlindIndex("email", "+8613800138000") {
		t.Fatal("the kind is not part of the blind index")
	}
}

func TestKeysAssociatedDataAndTampering(t *testing.T) {
	t.Parallel()
	k := newKeys(t)
	tok, err := k.Seal([]byte(bankCard), []byte("customers.bank_card"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Open(tok, []byte("customers.id_card")); !errors.Is(err, pii.ErrDecrypt) {
		t.Fatalf("open with other associated data: %v, want ErrDecrypt", err)
	}
	if got, err := k.Open(tok, []byte("customers.bank_card")); err != nil || !bytes.Equal(got, []byte(bankCard)) {
		t.Fatalf("open = %q, %v", got, err)
	}
	raw := []byte(tok)
	raw[len(raw)-3] = map[bool]byte{true: 'B', false: 'A'}[raw[len(raw)-3] == 'A']
	if _, err := k.Open(string(raw), []byte("customers.bank_card")); !errors.Is(err, pii.ErrDecrypt) {
		t.Fatalf("a tampered token: %v, want ErrDecrypt", err)
	}
	for _, bad := range []string{"", "13800138000", "pii:v1:k1:AAAA", pii.Prefix + "!!", pii.Prefix + "AAAA"} {
		if _, err := k.Decrypt(bad); !errors.Is(err, pii.ErrCiphertext) {
			t.Errorf("Decrypt(%q) = %v, want ErrCiphertext", bad, err)
		}
	}
}

func TestKeysetFile(t *testing.T) {
	t.Parallel()
	t.Run("clear, generated once and rotated in place", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "pii-keyset.json")
		k, created, err := pii.EnsureFile(path, "")
		if err != nil || !created {
			t.Fatalf("EnsureFile = %v, %v", created, err)
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("keyset file mode %v, %v; want 0600", fi.Mode().Perm(), err)
		}
		tok, _ := k.Encrypt(mobile)
		again, created, err := pii.EnsureFile(path, "")
		if err != nil || created || again.PrimaryKeyID() != k.PrimaryKeyID() {
			t.Fatalf("second EnsureFile: created %v, %v", created, err)
		}
		id, err := pii.RotateFile(path, "")
		if err != nil || id == k.PrimaryKeyID() {
			t.Fatalf("RotateFile = %d, %v", id, err)
		}
		rotated, err := pii.LoadFile(path, "")
		if err != nil || rotated.PrimaryKeyID() != id {
			t.Fatalf("LoadFile after rotation: %v", err)
		}
		if got, err := rotated.Decrypt(tok); err != nil || got != mobile {
			t.Fatalf("old token after rotation = %q, %v", got, err)
		}
		if rotated.BlindIndex("phone", mobile) != k.BlindIndex("phone", mobile) {
			t.Fatal("rotation changed the blind index")
		}
		if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
			t.Fatalf("rotated keyset file mode %v", fi.Mode().Perm())
		}
	})
	t.Run("encrypted with a key-encryption key", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		kekPath := filepath.Join(dir, "kek")
		if err := os.WriteFile(kekPath, []byte(key(t)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		kek := "file://" + kekPath
		path := filepath.Join(dir, "keyset.json")
		k, _, err := pii.EnsureFile(path, kek)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(path)
		var f map[string]map[string]any
		if err := json.Unmarshal(b, &f); err != nil || f["aead"]["encryptedKeyset"] == nil || f["blind_index"]["encryptedKeyset"] == nil {
			t.Fatalf("keyset file is not encrypted: %s", b)
		}
		if _, err := pii.LoadFile(path, ""); !errors.Is(err, pii.ErrKeys) || !strings.Contains(err.Error(), "PII_KEK_URI") {
			t.Fatalf("LoadFile without the KEK: %v", err)
		}
		other := filepath.Join(dir, "other")
		_ = os.WriteFile(other, []byte(key(t)), 0o600)
		if _, err := pii.LoadFile(path, "file://"+other); !errors.Is(err, pii.ErrKeys) {
			t.Fatalf("LoadFile with another KEK: %v", err)
		}
		got, err := pii.LoadFile(path, kek)
		if err != nil || got.BlindIndex("email", "a@b.cn") != k.BlindIndex("email", "a@b.cn") {
			t.Fatalf("LoadFile with the KEK: %v", err)
		}
		if _, err := pii.LoadFile(path, "gcp-kms://projects/p/locations/l/keyRings/r/cryptoKeys/k"); !errors.Is(err, pii.ErrKeys) || !strings.Contains(err.Error(), "docs/operations.md") {
			t.Fatalf("unregistered KMS: %v", err)
		}
	})
	t.Run("malformed file", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "k.json")
		_ = os.WriteFile(path, []byte(`{"aead": {}}`), 0o600)
		if _, err := pii.LoadFile(path, ""); !errors.Is(err, pii.ErrKeys) {
			t.Fatalf("LoadFile = %v", err)
		}
	})
}

func TestKEKFromEnv(t *testing.T) {
	t.Setenv("OMNIBUS_TEST_KEK", key(t))
	path := filepath.Join(t.TempDir(), "k.json")
	k, _, err := pii.EnsureFile(path, "env://OMNIBUS_TEST_KEK")
	if err != nil {
		t.Fatal(err)
	}
	got, err := pii.LoadFile(path, "env://OMNIBUS_TEST_KEK")
	if err != nil || got.PrimaryKeyID() != k.PrimaryKeyID() {
		t.Fatalf("LoadFile: %v", err)
	}
	if _, err := pii.LoadFile(path, "env://OMNIBUS_TEST_KEK_UNSET"); !errors.Is(err, pii.ErrKeys) {
		t.Fatalf("unset KEK variable: %v", err)
	}
}

func TestEventsSealOpen(t *testing.T) {
	t.Parallel()
	k := newKeys(t)
	x := pii.NewEvents(k)
	in := []byte(`{"channel":"sms","from":{"kind":"phone","value":"138 0013 8000"},"identities":[{"kind":"email","value":"Jane@Example.com"},{"kind":"wechat_openid","value":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}],"message":{"type":"text","text":"<hi> & bye"},"n":1.50}`)
	sealed, err := x.Seal(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, clear := range []string{"138 0013 8000", "13800138000", "Jane@Example.com", "jane@example.com"} {
		if bytes.Contains(sealed, []byte(clear)) {
			t.Fatalf("sealed data holds %q: %s", clear, sealed)
		}
	}
	var got struct {
		From       pii.Sealed
		Identities []map[string]string
	}
	if err := json.Unmarshal(sealed, &got); err != nil {
		t.Fatal(err)
	}
	if got.From.Masked != "+86 138****8000" || got.From.Index != k.BlindIndex("phone", "+8613800138000") || !pii.IsCiphertext(got.From.Value) {
		t.Fatalf("sealed from = %+v", got.From)
	}
	if got.Identities[1]["value"] != "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o" || len(got.Identities[1]) != 2 {
		t.Fatalf("an openid is not sealed: %v", got.Identities[1])
	}
	// The normalised form's index: every spelling of one phone has one index.
	other, _ := x.SealIdentity("phone", "+86-138-0013-8000")
	if other.Index != got.From.Index {
		t.Fatal("two spellings of one phone have different indexes")
	}
	// Sealing again changes nothing; opening restores the data exactly as published.
	if again, _ := x.Seal(sealed); !bytes.Equal(again, sealed) {
		t.Fatalf("sealing sealed data changed it:\n%s\n%s", sealed, again)
	}
	opened, err := x.Open(sealed)
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	_ = json.Unmarshal(in, &a)
	_ = json.Unmarshal(opened, &b)
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		t.Fatalf("open(seal(x)) != x:\n%s\n%s", in, opened)
	}
	// Data without identities is returned as is.
	plain := []byte(`{"kind":"order_no","value":"SO123456"}`)
	if out, _ := x.Seal(plain); !bytes.Equal(out, plain) {
		t.Fatalf("Seal changed data without personal identities: %s", out)
	}
	// Another keyset cannot open it.
	if _, err := pii.NewEvents(newKeys(t)).Open(sealed); !errors.Is(err, pii.ErrDecrypt) {
		t.Fatalf("open with another keyset: %v", err)
	}
	// Conceal keeps kind and mask only.
	concealed := string(pii.Conceal(sealed))
	if strings.Contains(concealed, pii.Prefix) || strings.Contains(concealed, got.From.Index) || !strings.Contains(concealed, `"masked":"+86 138****8000"`) {
		t.Fatalf("Conceal = %s", concealed)
	}
	// Partition keys.
	pk := x.SealPartitionKey("phone:+8613800138000")
	if strings.Contains(pk, "13800138000") || pk != x.SealPartitionKey("phone:13800138000") || pk != x.SealPartitionKey(pk) {
		t.Fatalf("SealPartitionKey = %q", pk)
	}
	if x.SealPartitionKey("web_visitor:v1") != "web_visitor:v1" {
		t.Fatal("a clear kind's partition key changed")
	}
}
