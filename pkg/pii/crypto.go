package pii

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Errors returned by ParseKeys, Open and Decrypt.
var (
	// ErrKeys is wrapped by ParseKeys for a malformed key list.
	ErrKeys = errors.New("pii: invalid keys")
	// ErrCiphertext is wrapped by Open for a token that is not a pii ciphertext.
	ErrCiphertext = errors.New("pii: not a ciphertext")
	// ErrUnknownKey is wrapped by Open when the token names a key the keyring does not hold.
	ErrUnknownKey = errors.New("pii: unknown key id")
	// ErrDecrypt is wrapped by Open when authentication fails (wrong key, wrong associated data,
	// or a tampered token).
	ErrDecrypt = errors.New("pii: decryption failed")
)

// Prefix starts every ciphertext token.
const Prefix = "pii:v1:"

// KeysEnv is the environment variable FromEnv reads.
const KeysEnv = "PII_KEYS"

// Keyring encrypts with its active key and decrypts with any of its keys. It is safe for
// concurrent use.
type Keyring struct {
	active string
	aeads  map[string]cipher.AEAD
	ids    []string
}

// ParseKeys parses "id:base64key,id2:base64key2": ids are 1-32 characters of [A-Za-z0-9_-], keys
// are 32 bytes in standard or URL base64 (padded or not). The first key is the active one.
func ParseKeys(spec string) (*Keyring, error) {
	k := &Keyring{aeads: map[string]cipher.AEAD{}}
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, b64, ok := strings.Cut(part, ":")
		if !ok || !validKeyID(id) {
			return nil, fmt.Errorf("%w: entry %q must be <id>:<base64 key> with an id of 1-32 characters [A-Za-z0-9_-]", ErrKeys, redactKeyEntry(part))
		}
		key, err := decodeKey(b64)
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("%w: key %q must be 32 bytes of base64 (openssl rand -base64 32)", ErrKeys, id)
		}
		if _, dup := k.aeads[id]; dup {
			return nil, fmt.Errorf("%w: key id %q appears twice", ErrKeys, id)
		}
		if err := k.add(id, key); err != nil {
			return nil, err
		}
	}
	if k.active == "" {
		return nil, fmt.Errorf("%w: no key given (%s=\"k1:<base64 of 32 random bytes>\")", ErrKeys, KeysEnv)
	}
	return k, nil
}

// FromEnv reads PII_KEYS through lookup (os.LookupEnv fits).
func FromEnv(lookup func(string) (string, bool)) (*Keyring, error) {
	v, _ := lookup(KeysEnv)
	return ParseKeys(v)
}

// NewKeyring builds a keyring from raw 32-byte keys; ids[0] is active.
func NewKeyring(ids []string, keys [][]byte) (*Keyring, error) {
	if len(ids) == 0 || len(ids) != len(keys) {
		return nil, fmt.Errorf("%w: need one id per key and at least one key", ErrKeys)
	}
	k := &Keyring{aeads: map[string]cipher.AEAD{}}
	for i, id := range ids {
		if !validKeyID(id) || len(keys[i]) != 32 {
			return nil, fmt.Errorf("%w: key %q: id must be [A-Za-z0-9_-]{1,32} and the key 32 bytes", ErrKeys, id)
		}
		if _, dup := k.aeads[id]; dup {
			return nil, fmt.Errorf("%w: key id %q appears twice", ErrKeys, id)
		}
		if err := k.add(id, keys[i]); err != nil {
			return nil, err
		}
	}
	return k, nil
}

func (k *Keyring) add(id string, key []byte) error {
	block, err := aes.NewCipher(key)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrKeys, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrKeys, err)
	}
	if k.active == "" {
		k.active = id
	}
	k.aeads[id] = aead
	k.ids = append(k.ids, id)
	return nil
}

// ActiveKeyID is the id new ciphertexts carry.
func (k *Keyring) ActiveKeyID() string { return k.active }

// KeyIDs lists the ids the keyring decrypts, the active one first.
func (k *Keyring) KeyIDs() []string { return append([]string(nil), k.ids...) }

// Seal encrypts plaintext under the active key with a fresh random nonce, binding aad (which may
// be nil) to the ciphertext.
func (k *Keyring) Seal(plaintext, aad []byte) (string, error) {
	aead := k.aeads[k.active]
	buf := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("pii: nonce: %w", err)
	}
	buf = aead.Seal(buf, buf, plaintext, aad)
	return Prefix + k.active + ":" + base64.RawURLEncoding.EncodeToString(buf), nil
}

// Open decrypts a token made by Seal with any key of the keyring. Errors wrap ErrCiphertext,
// ErrUnknownKey or ErrDecrypt.
func (k *Keyring) Open(token string, aad []byte) ([]byte, error) {
	id, raw, err := parseToken(token)
	if err != nil {
		return nil, err
	}
	aead, ok := k.aeads[id]
	if !ok {
		return nil, fmt.Errorf("%w: %q (known: %s)", ErrUnknownKey, id, strings.Join(k.ids, ", "))
	}
	if len(raw) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("%w: token too short", ErrCiphertext)
	}
	n := aead.NonceSize()
	out, err := aead.Open(nil, raw[:n], raw[n:], aad)
	if err != nil {
		return nil, fmt.Errorf("%w (key %s)", ErrDecrypt, id)
	}
	return out, nil
}

// Encrypt is Seal for a string field without associated data.
func (k *Keyring) Encrypt(plaintext string) (string, error) { return k.Seal([]byte(plaintext), nil) }

// Decrypt is Open for a string field without associated data.
func (k *Keyring) Decrypt(token string) (string, error) {
	b, err := k.Open(token, nil)
	return string(b), err
}

// NeedsRotation reports whether token was sealed under a key other than the active one (or is
// not a ciphertext at all): such values should be decrypted and sealed again.
func (k *Keyring) NeedsRotation(token string) bool {
	id, _, err := parseToken(token)
	return err != nil || id != k.active
}

// IsCiphertext reports whether s has the shape of a token made by Seal.
func IsCiphertext(s string) bool {
	_, _, err := parseToken(s)
	return err == nil
}

// KeyIDOf returns the key id a token names.
func KeyIDOf(token string) (string, error) {
	id, _, err := parseToken(token)
	return id, err
}

func parseToken(token string) (id string, raw []byte, err error) {
	rest, ok := strings.CutPrefix(token, Prefix)
	if !ok {
		return "", nil, fmt.Errorf("%w: missing %q prefix", ErrCiphertext, Prefix)
	}
	id, b64, ok := strings.Cut(rest, ":")
	if !ok || !validKeyID(id) {
		return "", nil, fmt.Errorf("%w: malformed key id", ErrCiphertext)
	}
	raw, err = base64.RawURLEncoding.DecodeString(b64)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %w", ErrCiphertext, err)
	}
	return id, raw, nil
}

func validKeyID(id string) bool {
	if len(id) == 0 || len(id) > 32 {
		return false
	}
	for _, c := range id {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

func decodeKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// redactKeyEntry keeps a key out of error messages.
func redactKeyEntry(entry string) string {
	if id, _, ok := strings.Cut(entry, ":"); ok {
		return id + ":<redacted>"
	}
	if len(entry) > 4 {
		return entry[:2] + "…"
	}
	return entry
}
