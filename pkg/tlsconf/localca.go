package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Local is a development CA and a certificate it signed, as files.
type Local struct {
	CAFile, CertFile, KeyFile string
}

// LocalCA makes, in dir, a development CA (ca.pem; its key ca-key.pem, 0600) and a server and
// client certificate for hosts (cert.pem, key.pem), or reuses those already there. Trust ca.pem
// in a browser or the nats CLI (--tlsca) to use them; never in production.
func LocalCA(dir string, hosts []string) (Local, error) {
	l := Local{CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem")}
	if exists(l.CAFile) && exists(l.CertFile) && exists(l.KeyFile) {
		return l, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return l, err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return l, err
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{Organization: []string{"omnibus development CA"}, CommonName: "omnibus local CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(5, 0, 0),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return l, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return l, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return l, err
	}
	leaf := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{Organization: []string{"omnibus development"}, CommonName: hosts[0]},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			leaf.IPAddresses = append(leaf.IPAddresses, ip)
		} else {
			leaf.DNSNames = append(leaf.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		return l, err
	}
	caKeyDER, err := x509.MarshalECPrivateKey(caKey)
	if err != nil {
		return l, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return l, err
	}
	for _, f := range []struct {
		path, typ string
		der       []byte
		mode      os.FileMode
	}{
		{filepath.Join(dir, "ca-key.pem"), "EC PRIVATE KEY", caKeyDER, 0o600},
		{l.KeyFile, "EC PRIVATE KEY", keyDER, 0o600},
		{l.CAFile, "CERTIFICATE", caDER, 0o644},
		{l.CertFile, "CERTIFICATE", der, 0o644},
	} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), f.mode); err != nil {
			return l, fmt.Errorf("local CA: %w", err)
		}
	}
	return l, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	return n
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist)
}
