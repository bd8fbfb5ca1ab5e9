package pii

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/tink-crypto/tink-go/v2/aead/subtle"
	"github.com/tink-crypto/tink-go/v2/core/registry"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// RegisterKMS makes key-encryption keys of another URI scheme available to LoadFile and
// WriteFile: a deployment that keeps its key-encryption key in a cloud KMS registers that KMS's
// tink client (github.com/tink-crypto/tink-go-gcpkms/v2 for gcp-kms://,
// tink-go-awskms/v2 for aws-kms://, tink-go-hcvault/v2 for hcvault://) from its main package.
// Built in are env://VAR and file://PATH: a 32-byte AES-256-GCM key, base64, in an environment
// variable or a file.
func RegisterKMS(c registry.KMSClient) { registry.RegisterKMSClient(c) }

func init() { registry.RegisterKMSClient(localKEK{}) }

// localKEK is the built-in KMS client: a local AES-256-GCM key-encryption key.
type localKEK struct{}

func (localKEK) Supported(uri string) bool {
	return strings.HasPrefix(uri, "env://") || strings.HasPrefix(uri, "file://")
}

func (localKEK) GetAEAD(uri string) (tink.AEAD, error) {
	var raw string
	switch {
	case strings.HasPrefix(uri, "env://"):
		name := strings.TrimPrefix(uri, "env://")
		v, ok := os.LookupEnv(name)
		if !ok || v == "" {
			return nil, fmt.Errorf("environment variable %s is not set", name)
		}
		raw = v
	case strings.HasPrefix(uri, "file://"):
		b, err := os.ReadFile(strings.TrimPrefix(uri, "file://"))
		if err != nil {
			return nil, err
		}
		raw = string(b)
	default:
		return nil, errors.New("unsupported URI")
	}
	key, err := decodeKey(raw)
	if err != nil || len(key) != 32 {
		return nil, errors.New("the key-encryption key must be 32 bytes, base64 (openssl rand -base64 32)")
	}
	return subtle.NewAESGCM(key)
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

// redactURI keeps a KMS URI's scheme and the first characters of the rest, for error messages.
func redactURI(uri string) string {
	scheme, rest, ok := strings.Cut(uri, "://")
	if !ok {
		return "<malformed URI>"
	}
	if len(rest) > 24 {
		rest = rest[:24] + "…"
	}
	return scheme + "://" + rest
}

// Config says where a process finds its keys (pkg/config tags).
type Config struct {
	KeysetFile string `env:"PII_KEYSET_FILE" desc:"the personal-data keyset file (AEAD + blind index keysets, tink JSON; create with omnibus keys init, rotate with omnibus keys rotate). Empty: personal data is published and stored in clear (the all-in-one uses OMNIBUS_DATA_DIR/pii-keyset.json, generated on first start)"`
	KEKURI     string `env:"PII_KEK_URI" desc:"the key-encryption key the keyset file is encrypted with: env://VAR or file://PATH (32 bytes, base64), or a cloud KMS key URI (gcp-kms://, aws-kms://, hcvault://) in a build that registers that KMS; empty: the keyset file is clear (development)"`
}

// Load returns the keys c names, or nil when c names no keyset file.
func (c Config) Load() (*Keys, error) {
	if c.KeysetFile == "" {
		return nil, nil
	}
	return LoadFile(c.KeysetFile, c.KEKURI)
}
