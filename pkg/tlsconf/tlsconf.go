// Package tlsconf is TLS for every omnibus listener and client, TLS 1.3 only: the HTTP
// listeners (webhooks, the desk, /metrics), the connections to NATS (client and, in
// deploy/nats, routes) and to Postgres. Certificates come from PEM files (what cert-manager,
// an ACME client such as lego or certbot, or a corporate PKI writes); they are read again when
// the files change, so a renewal needs no restart. LocalCA makes a development CA and a
// certificate for local hosts.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// MinVersion is the only protocol version omnibus speaks: TLS 1.3 (RFC 8446), as the seed asks.
const MinVersion = tls.VersionTLS13

// ErrConfig is wrapped for an incomplete or unreadable TLS configuration.
var ErrConfig = errors.New("tls configuration")

// Server is the TLS of an HTTP listener.
type Server struct {
	CertFile     string `env:"TLS_CERT_FILE" desc:"PEM certificate (with its chain) of the HTTP listener; with TLS_KEY_FILE it serves HTTPS, TLS 1.3 only, and reads the files again when they change (ACME renewals); empty: plain HTTP (behind a TLS-terminating proxy)"`
	KeyFile      string `env:"TLS_KEY_FILE" desc:"PEM private key of TLS_CERT_FILE"`
	ClientCAFile string `env:"TLS_CLIENT_CA_FILE" desc:"PEM CA bundle: the listener requires a client certificate this CA signed (mutual TLS), e.g. for webhooks from a vendor gateway or service-to-service calls"`
}

// Enabled reports whether the listener serves TLS.
func (s Server) Enabled() bool { return s.CertFile != "" || s.KeyFile != "" }

// Config is the listener's tls.Config, nil when TLS is off.
func (s Server) Config() (*tls.Config, error) {
	if !s.Enabled() {
		if s.ClientCAFile != "" {
			return nil, fmt.Errorf("%w: TLS_CLIENT_CA_FILE needs TLS_CERT_FILE and TLS_KEY_FILE", ErrConfig)
		}
		return nil, nil
	}
	if s.CertFile == "" || s.KeyFile == "" {
		return nil, fmt.Errorf("%w: set both TLS_CERT_FILE and TLS_KEY_FILE", ErrConfig)
	}
	kp := &keyPair{cert: s.CertFile, key: s.KeyFile}
	if _, err := kp.get(); err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: MinVersion, GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return kp.get() }}
	if s.ClientCAFile != "" {
		pool, err := certPool(s.ClientCAFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// NATS is the TLS of a connection to NATS.
type NATS struct {
	CAFile   string `env:"NATS_TLS_CA_FILE" desc:"PEM CA bundle that signed the NATS server's certificate: the connection uses TLS 1.3 (use tls:// in NATS_URL); empty with a tls:// URL: the system's roots"`
	CertFile string `env:"NATS_TLS_CERT_FILE" desc:"PEM client certificate for NATS servers that verify clients (verify: true in deploy/nats)"`
	KeyFile  string `env:"NATS_TLS_KEY_FILE" desc:"PEM private key of NATS_TLS_CERT_FILE"`
}

// Options are the connection options, none when nothing is set.
func (n NATS) Options() ([]nats.Option, error) {
	if n.CAFile == "" && n.CertFile == "" && n.KeyFile == "" {
		return nil, nil
	}
	cfg, err := n.Config()
	if err != nil {
		return nil, err
	}
	return []nats.Option{nats.Secure(cfg)}, nil
}

// Config is the client tls.Config of the NATS connection.
func (n NATS) Config() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: MinVersion}
	if n.CAFile != "" {
		pool, err := certPool(n.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if (n.CertFile == "") != (n.KeyFile == "") {
		return nil, fmt.Errorf("%w: set both NATS_TLS_CERT_FILE and NATS_TLS_KEY_FILE", ErrConfig)
	}
	if n.CertFile != "" {
		kp := &keyPair{cert: n.CertFile, key: n.KeyFile}
		if _, err := kp.get(); err != nil {
			return nil, err
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return kp.get() }
	}
	return cfg, nil
}

// Client hardens a client tls.Config (Postgres's, from DATABASE_URL's sslmode and sslrootcert)
// to TLS 1.3; nil stays nil (no TLS configured).
func Client(cfg *tls.Config) {
	if cfg != nil {
		cfg.MinVersion = MinVersion
	}
}

// SelfCheck is the client configuration a process uses to reach its own listener (the
// container healthcheck): TLS 1.3, names not verified, the listener's certificate presented.
func SelfCheck(s Server) (*tls.Config, error) {
	kp := &keyPair{cert: s.CertFile, key: s.KeyFile}
	c, err := kp.get()
	if err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: MinVersion, InsecureSkipVerify: true, Certificates: []tls.Certificate{*c}}, nil //nolint:gosec // its own loopback listener
}

// certPool reads a PEM CA bundle.
func certPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%w: %s holds no PEM certificate", ErrConfig, path)
	}
	return pool, nil
}

// keyPair is a certificate and key read from files, read again when either file changes.
type keyPair struct {
	cert, key string
	mu        sync.Mutex
	loaded    *tls.Certificate
	stamp     [2]time.Time
	checked   time.Time
}

func (k *keyPair) get() (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.loaded != nil && time.Since(k.checked) < 10*time.Second {
		return k.loaded, nil
	}
	k.checked = time.Now()
	var stamp [2]time.Time
	for i, p := range []string{k.cert, k.key} {
		st, err := os.Stat(p)
		if err != nil {
			if k.loaded != nil {
				return k.loaded, nil // mid-renewal: keep serving the one we have
			}
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		stamp[i] = st.ModTime()
	}
	if k.loaded != nil && stamp == k.stamp {
		return k.loaded, nil
	}
	c, err := tls.LoadX509KeyPair(k.cert, k.key)
	if err != nil {
		if k.loaded != nil {
			return k.loaded, nil
		}
		return nil, fmt.Errorf("%w: %s, %s: %w", ErrConfig, k.cert, k.key, err)
	}
	k.loaded, k.stamp = &c, stamp
	return k.loaded, nil
}
