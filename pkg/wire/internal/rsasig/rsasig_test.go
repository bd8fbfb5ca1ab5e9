package rsasig

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"testing"
	"time"
)

// The key forms the vendors' consoles and SDKs hand out all parse, and to the same key.
func TestParse(t *testing.T) {
	t.Parallel()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(k)
	pkcs1 := x509.MarshalPKCS1PrivateKey(k)
	spki, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	cert, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"}}, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	armour := func(typ string, der []byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
	}
	b64 := base64.StdEncoding.EncodeToString
	for name, s := range map[string]string{"PKCS#8 PEM": armour("PRIVATE KEY", pkcs8), "PKCS#1 PEM": armour("RSA PRIVATE KEY", pkcs1),
		"PKCS#8 base64": b64(pkcs8), "PKCS#1 base64 with line breaks": b64(pkcs1)[:64] + "\n" + b64(pkcs1)[64:]} {
		got, err := ParsePrivate(s)
		if err != nil || !got.Equal(k) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, s := range map[string]string{"SPKI PEM": armour("PUBLIC KEY", spki), "SPKI base64": b64(spki),
		"certificate PEM": armour("CERTIFICATE", cert), "certificate base64": b64(cert), "PKCS#1 public PEM": armour("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&k.PublicKey))} {
		got, err := ParsePublic(s)
		if err != nil || !got.Equal(&k.PublicKey) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, bad := range []string{"", "not a key", b64([]byte("garbage"))} {
		if _, err := ParsePrivate(bad); !errors.Is(err, ErrKey) {
			t.Errorf("ParsePrivate(%q) = %v", bad, err)
		}
		if _, err := ParsePublic(bad); !errors.Is(err, ErrKey) {
			t.Errorf("ParsePublic(%q) = %v", bad, err)
		}
	}
	sig, err := Sign(k, []byte("m"))
	if err != nil || Verify(&k.PublicKey, []byte("m"), sig) != nil || !errors.Is(Verify(&k.PublicKey, []byte("n"), sig), ErrSignature) {
		t.Errorf("sign/verify round trip: %v", err)
	}
	if !errors.Is(Verify(&k.PublicKey, []byte("m"), "%%%"), ErrSignature) || !errors.Is(Verify(nil, []byte("m"), sig), ErrSignature) {
		t.Error("garbage signature or no key verified")
	}
}
