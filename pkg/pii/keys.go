package pii

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/core/registry"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/prf"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// Errors returned by the key functions and Decrypt.
var (
	// ErrKeys is wrapped when a keyset file is missing, malformed or cannot be unwrapped.
	ErrKeys = errors.New("pii: keys")
	// ErrCiphertext is wrapped by Decrypt for a value that is not a pii ciphertext token.
	ErrCiphertext = errors.New("pii: not a ciphertext")
	// ErrDecrypt is wrapped by Decrypt when no key of the keyset opens the token (unknown key id,
	// other associated data, tampered token).
	ErrDecrypt = errors.New("pii: decryption failed")
)

// Prefix starts every ciphertext token: Prefix + base64url(tink ciphertext), whose first five
// bytes are tink's output prefix (version byte and the 32-bit id of the key that sealed it).
const Prefix = "pii:v2:"

// indexLen is the blind index's length in bytes (128 bits: collisions stay below 2^-32 up to
// 2^48 distinct values).
const indexLen = 16

// Keys holds the two keysets personal data is protected with: an AEAD keyset (AES-256-GCM,
// rotated by adding a new primary; every key of it still decrypts) and a PRF keyset
// (HMAC-SHA256) for blind indexes, which is never rotated with the AEAD keyset so that an index
// stays the same across rotations. Keys is safe for concurrent use.
type Keys struct {
	aeadH, indexH *keyset.Handle
	aead          tink.AEAD
	index         prf.PRF
	primary       uint32
}

// NewKeys generates a fresh pair of keysets.
func NewKeys() (*Keys, error) {
	ah, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeys, err)
	}
	ih, err := keyset.NewHandle(prf.HMACSHA256PRFKeyTemplate())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeys, err)
	}
	return fromHandles(ah, ih)
}

func fromHandles(ah, ih *keyset.Handle) (*Keys, error) {
	a, err := aead.New(ah)
	if err != nil {
		return nil, fmt.Errorf("%w: aead keyset: %w", ErrKeys, err)
	}
	ps, err := prf.NewPRFSet(ih)
	if err != nil {
		return nil, fmt.Errorf("%w: blind index keyset: %w", ErrKeys, err)
	}
	p, err := ah.Primary()
	if err != nil {
		return nil, fmt.Errorf("%w: aead keyset: %w", ErrKeys, err)
	}
	return &Keys{aeadH: ah, indexH: ih, aead: a, index: ps.PRFs[ps.PrimaryID], primary: p.KeyID()}, nil
}

// PrimaryKeyID is the id of the AEAD key new ciphertexts are sealed with.
func (k *Keys) PrimaryKeyID() uint32 { return k.primary }

// KeyIDs lists the ids of the AEAD keys that decrypt, the primary first.
func (k *Keys) KeyIDs() []uint32 {
	out := []uint32{k.primary}
	for _, ki := range k.aeadH.KeysetInfo().GetKeyInfo() {
		if ki.GetKeyId() != k.primary {
			out = append(out, ki.GetKeyId())
		}
	}
	return out
}

// Seal encrypts plaintext under the primary key, binding aad (which may be nil), and returns a
// printable token (Prefix + base64url).
func (k *Keys) Seal(plaintext, aad []byte) (string, error) {
	ct, err := k.aead.Encrypt(plaintext, aad)
	if err != nil {
		return "", fmt.Errorf("pii: encrypt: %w", err)
	}
	return Prefix + base64.RawURLEncoding.EncodeToString(ct), nil
}

// Open decrypts a token made by Seal with any key of the keyset. Errors wrap ErrCiphertext or
// ErrDecrypt.
func (k *Keys) Open(token string, aad []byte) ([]byte, error) {
	raw, err := parseToken(token)
	if err != nil {
		return nil, err
	}
	out, err := k.aead.Decrypt(raw, aad)
	if err != nil {
		id, _ := KeyIDOf(token)
		return nil, fmt.Errorf("%w (key %d)", ErrDecrypt, id)
	}
	return out, nil
}

// Encrypt is Seal for a string without associated data.
func (k *Keys) Encrypt(plaintext string) (string, error) { return k.Seal([]byte(plaintext), nil) }

// Decrypt is Open for a string without associated data.
func (k *Keys) Decrypt(token string) (string, error) {
	b, err := k.Open(token, nil)
	return string(b), err
}

// BlindIndex is the keyed HMAC-SHA256 of kind and an already normalised value, base64url
// (22 characters): equal (kind, value) pairs give equal indexes under one keyset, and nothing
// about the value can be learnt from it without the key. Callers normalise first
// (pkg/identity), so that every spelling of a phone number has one index.
func (k *Keys) BlindIndex(kind, normalized string) string {
	in := make([]byte, 0, len(kind)+1+len(normalized))
	in = append(in, kind...)
	in = append(in, 0)
	in = append(in, normalized...)
	out, err := k.index.ComputePRF(in, indexLen)
	if err != nil { // only for an output length the key cannot give: a programming error
		panic(fmt.Sprintf("pii: blind index: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(out)
}

// NeedsRotation reports whether token was sealed under a key other than the primary (or is not a
// ciphertext at all): such values should be decrypted and sealed again before the old key is
// removed from the keyset.
func (k *Keys) NeedsRotation(token string) bool {
	id, err := KeyIDOf(token)
	return err != nil || id != k.primary
}

// IsCiphertext reports whether s has the shape of a token made by Seal.
func IsCiphertext(s string) bool {
	_, err := parseToken(s)
	return err == nil
}

// KeyIDOf returns the id of the key a token was sealed with.
func KeyIDOf(token string) (uint32, error) {
	raw, err := parseToken(token)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(raw[1:5]), nil
}

// minToken is tink's 5-byte prefix, the 12-byte nonce and the 16-byte tag.
const minToken = 5 + 12 + 16

func parseToken(token string) ([]byte, error) {
	b64, ok := strings.CutPrefix(token, Prefix)
	if !ok {
		return nil, fmt.Errorf("%w: missing %q prefix", ErrCiphertext, Prefix)
	}
	raw, err := base64.RawURLEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCiphertext, err)
	}
	if len(raw) < minToken || raw[0] != 1 {
		return nil, fmt.Errorf("%w: not a tink ciphertext", ErrCiphertext)
	}
	return raw, nil
}

// keysetFile is the file both keysets live in: each a tink JSON keyset, clear
// ({"primaryKeyId":…,"key":[…]}) or encrypted with a key-encryption key
// ({"encryptedKeyset":…,"keysetInfo":…}).
type keysetFile struct {
	AEAD       json.RawMessage `json:"aead"`
	BlindIndex json.RawMessage `json:"blind_index"`
}

// Associated data binding each wrapped keyset to its role, so the two cannot be swapped.
var (
	aadAEAD  = []byte("omnibus pii aead keyset")
	aadIndex = []byte("omnibus pii blind index keyset")
)

// kek returns the key-encryption AEAD for uri ("" : nil, the keysets are clear).
func kek(uri string) (tink.AEAD, error) {
	if uri == "" {
		return nil, nil
	}
	c, err := registry.GetKMSClient(uri)
	if err != nil {
		return nil, fmt.Errorf("%w: no KMS client for %s (built in: env://VAR and file://PATH; a cloud KMS needs its tink module, see docs/operations.md): %w", ErrKeys, redactURI(uri), err)
	}
	a, err := c.GetAEAD(uri)
	if err != nil {
		return nil, fmt.Errorf("%w: key-encryption key %s: %w", ErrKeys, redactURI(uri), err)
	}
	return a, nil
}

// LoadFile reads the keysets from path. kekURI names the key-encryption key the keysets are
// encrypted with ("" for a clear keyset file, for development); see RegisterKMS.
func LoadFile(path, kekURI string) (*Keys, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeys, err)
	}
	var f keysetFile
	if err := json.Unmarshal(b, &f); err != nil || len(f.AEAD) == 0 || len(f.BlindIndex) == 0 {
		return nil, fmt.Errorf("%w: %s is not a keyset file (want {\"aead\": <tink keyset>, \"blind_index\": <tink keyset>})", ErrKeys, path)
	}
	master, err := kek(kekURI)
	if err != nil {
		return nil, err
	}
	read := func(raw json.RawMessage, aad []byte) (*keyset.Handle, error) {
		r := keyset.NewJSONReader(bytes.NewReader(raw))
		if master == nil {
			if bytes.Contains(raw, []byte(`"encryptedKeyset"`)) {
				return nil, errors.New("the keyset is encrypted: set the key-encryption key's URI (PII_KEK_URI)")
			}
			return insecurecleartextkeyset.Read(r)
		}
		return keyset.ReadWithAssociatedData(r, master, aad)
	}
	ah, err := read(f.AEAD, aadAEAD)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: aead: %w", ErrKeys, path, err)
	}
	ih, err := read(f.BlindIndex, aadIndex)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: blind_index: %w", ErrKeys, path, err)
	}
	return fromHandles(ah, ih)
}

// WriteFile writes k to path (mode 0600, replaced atomically), the keysets encrypted with the
// key-encryption key kekURI names, or clear if kekURI is "".
func (k *Keys) WriteFile(path, kekURI string) error {
	master, err := kek(kekURI)
	if err != nil {
		return err
	}
	write := func(h *keyset.Handle, aad []byte) (json.RawMessage, error) {
		var buf bytes.Buffer
		w := keyset.NewJSONWriter(&buf)
		if master == nil {
			err = insecurecleartextkeyset.Write(h, w)
		} else {
			err = h.WriteWithAssociatedData(w, master, aad)
		}
		return buf.Bytes(), err
	}
	var f keysetFile
	if f.AEAD, err = write(k.aeadH, aadAEAD); err != nil {
		return fmt.Errorf("%w: %w", ErrKeys, err)
	}
	if f.BlindIndex, err = write(k.indexH, aadIndex); err != nil {
		return fmt.Errorf("%w: %w", ErrKeys, err)
	}
	out, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrKeys, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".pii-keyset-*")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrKeys, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("%w: %w", ErrKeys, err)
	}
	if _, err := tmp.Write(append(out, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("%w: %w", ErrKeys, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("%w: %w", ErrKeys, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("%w: %w", ErrKeys, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("%w: %w", ErrKeys, err)
	}
	return nil
}

// Rotated returns a copy of k with a new AES-256-GCM key as primary; the previous keys stay and
// still decrypt. The blind index keyset is unchanged.
func (k *Keys) Rotated() (*Keys, error) {
	m := keyset.NewManagerFromHandle(k.aeadH)
	id, err := m.Add(aead.AES256GCMKeyTemplate())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeys, err)
	}
	if err := m.SetPrimary(id); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeys, err)
	}
	h, err := m.Handle()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeys, err)
	}
	return fromHandles(h, k.indexH)
}

// EnsureFile loads the keyset file at path, or generates one there (mode 0600) if there is
// none: what the all-in-one does with its data dir. created reports the latter.
func EnsureFile(path, kekURI string) (k *Keys, created bool, err error) {
	if _, err := os.Stat(path); err == nil {
		k, err := LoadFile(path, kekURI)
		return k, false, err
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, false, fmt.Errorf("%w: %w", ErrKeys, err)
	}
	if k, err = NewKeys(); err != nil {
		return nil, false, err
	}
	if err := k.WriteFile(path, kekURI); err != nil {
		return nil, false, err
	}
	return k, true, nil
}

// RotateFile adds a new primary AEAD key to the keyset file at path and returns its id. Running
// processes pick it up on their next start; until then they keep sealing with the old primary,
// which every process still decrypts.
func RotateFile(path, kekURI string) (uint32, error) {
	k, err := LoadFile(path, kekURI)
	if err != nil {
		return 0, err
	}
	r, err := k.Rotated()
	if err != nil {
		return 0, err
	}
	if err := r.WriteFile(path, kekURI); err != nil {
		return 0, err
	}
	return r.PrimaryKeyID(), nil
}
