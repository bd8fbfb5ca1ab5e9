// Package rsasig is the SHA256withRSA (RSASSA-PKCS1-v1_5 over SHA-256) signature both payment
// wire formats use — Alipay's RSA2 and WeChat Pay v3's WECHATPAY2-SHA256-RSA2048 — and the key
// parsing they share: PEM (PKCS#1, PKCS#8, SPKI or an X.509 certificate) or the bare base64 DER
// single line the vendors' consoles hand out.
package rsasig

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// ErrKey is wrapped by the parsers for a key they cannot read.
var ErrKey = errors.New("unreadable RSA key")

// ErrSignature is wrapped by Verify for a signature that does not match.
var ErrSignature = errors.New("signature does not verify")

// Sign returns base64(RSASSA-PKCS1-v1_5(SHA-256(msg))).
func Sign(key *rsa.PrivateKey, msg []byte) (string, error) {
	if key == nil {
		return "", fmt.Errorf("%w: no private key", ErrKey)
	}
	h := sha256.Sum256(msg)
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, h[:])
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// Verify checks a base64 signature of msg. It returns nil or an error wrapping ErrSignature.
func Verify(key *rsa.PublicKey, msg []byte, sigB64 string) error {
	if key == nil {
		return fmt.Errorf("%w: no public key", ErrSignature)
	}
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(sigB64))
	if err != nil {
		return fmt.Errorf("%w: not base64", ErrSignature)
	}
	h := sha256.Sum256(msg)
	if err := rsa.VerifyPKCS1v15(key, crypto.SHA256, h[:], sig); err != nil {
		return fmt.Errorf("%w: %w", ErrSignature, err)
	}
	return nil
}

// der returns the DER bytes of s: a PEM block's, or s as bare base64.
func der(s string) ([]byte, string, error) {
	s = strings.TrimSpace(s)
	if b, _ := pem.Decode([]byte(s)); b != nil {
		return b.Bytes, b.Type, nil
	}
	raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil || len(raw) == 0 {
		return nil, "", fmt.Errorf("%w: neither PEM nor base64 DER", ErrKey)
	}
	return raw, "", nil
}

// ParsePrivate reads an RSA private key (PKCS#8 or PKCS#1).
func ParsePrivate(s string) (*rsa.PrivateKey, error) {
	raw, _, err := der(s)
	if err != nil {
		return nil, err
	}
	if k, err := x509.ParsePKCS8PrivateKey(raw); err == nil {
		if rk, ok := k.(*rsa.PrivateKey); ok {
			return rk, nil
		}
		return nil, fmt.Errorf("%w: PKCS#8 key is not RSA", ErrKey)
	}
	if k, err := x509.ParsePKCS1PrivateKey(raw); err == nil {
		return k, nil
	}
	return nil, fmt.Errorf("%w: not a PKCS#8 or PKCS#1 private key", ErrKey)
}

// ParsePublic reads an RSA public key (SPKI, PKCS#1, or the key of an X.509 certificate).
func ParsePublic(s string) (*rsa.PublicKey, error) {
	raw, typ, err := der(s)
	if err != nil {
		return nil, err
	}
	if typ == "CERTIFICATE" || typ == "" {
		if c, err := x509.ParseCertificate(raw); err == nil {
			if k, ok := c.PublicKey.(*rsa.PublicKey); ok {
				return k, nil
			}
			return nil, fmt.Errorf("%w: certificate key is not RSA", ErrKey)
		}
	}
	if k, err := x509.ParsePKIXPublicKey(raw); err == nil {
		if rk, ok := k.(*rsa.PublicKey); ok {
			return rk, nil
		}
		return nil, fmt.Errorf("%w: public key is not RSA", ErrKey)
	}
	if k, err := x509.ParsePKCS1PublicKey(raw); err == nil {
		return k, nil
	}
	return nil, fmt.Errorf("%w: not an SPKI, PKCS#1 or certificate public key", ErrKey)
}
