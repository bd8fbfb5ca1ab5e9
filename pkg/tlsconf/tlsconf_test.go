package tlsconf_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/omnibus-dev/omnibus/pkg/natsembed"
	"github.com/omnibus-dev/omnibus/pkg/tlsconf"
)

func pool(t *testing.T, caFile string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		t.Fatal("no CA")
	}
	return p
}

func serve(t *testing.T, s tlsconf.Server) string {
	t.Helper()
	cfg, err := s.Config()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })} //nolint:gosec // test server
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "https://" + ln.Addr().String() + "/"
}

func get(url string, cfg *tls.Config) error {
	c := http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// A listener speaks TLS 1.3 only: a TLS 1.2 client is refused, a TLS 1.3 one that trusts the CA
// gets in.
func TestListenerRefusesBelowTLS13(t *testing.T) {
	t.Parallel()
	l, err := tlsconf.LocalCA(t.TempDir(), []string{"localhost", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	url := serve(t, tlsconf.Server{CertFile: l.CertFile, KeyFile: l.KeyFile})
	roots := pool(t, l.CAFile)
	if err := get(url, &tls.Config{RootCAs: roots, MaxVersion: tls.VersionTLS12}); err == nil {
		t.Error("a TLS 1.2 client was served")
	}
	if err := get(url, &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS13}); err != nil {
		t.Errorf("a TLS 1.3 client: %v", err)
	}
}

// With a client CA, the listener wants a certificate that CA signed: none, or a self-signed
// one from another CA, is refused.
func TestListenerMutualTLS(t *testing.T) {
	t.Parallel()
	l, err := tlsconf.LocalCA(t.TempDir(), []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := tlsconf.LocalCA(t.TempDir(), []string{"127.0.0.1"}) // a stranger's CA and certificate
	if err != nil {
		t.Fatal(err)
	}
	url := serve(t, tlsconf.Server{CertFile: l.CertFile, KeyFile: l.KeyFile, ClientCAFile: l.CAFile})
	roots := pool(t, l.CAFile)
	own, err := tls.LoadX509KeyPair(l.CertFile, l.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := tls.LoadX509KeyPair(other.CertFile, other.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := get(url, &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS13}); err == nil {
		t.Error("served a client without a certificate")
	}
	if err := get(url, &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{foreign}}); err == nil {
		t.Error("served a client whose certificate another CA signed")
	}
	if err := get(url, &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{own}}); err != nil {
		t.Errorf("a client with a certificate the CA signed: %v", err)
	}
}

// NATS over TLS 1.3: a client configured with tlsconf.NATS connects, a TLS 1.2 one is refused.
func TestNATSTLS13(t *testing.T) {
	t.Parallel()
	l, err := tlsconf.LocalCA(t.TempDir(), []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := tlsconf.Server{CertFile: l.CertFile, KeyFile: l.KeyFile}.Config()
	if err != nil {
		t.Fatal(err)
	}
	ns, err := natsembed.Start(natsembed.Options{TLS: cfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	opts, err := tlsconf.NATS{CAFile: l.CAFile}.Options()
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(ns.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("a TLS 1.3 client: %v", err)
	}
	nc.Close()
	if nc, err := nats.Connect(ns.ClientURL(), nats.Secure(&tls.Config{RootCAs: pool(t, l.CAFile), MaxVersion: tls.VersionTLS12})); err == nil {
		nc.Close()
		t.Error("a TLS 1.2 client connected")
	}
	if nc, err := nats.Connect(ns.ClientURL()); err == nil {
		nc.Close()
		t.Error("a plain-text client connected")
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	for _, s := range []tlsconf.Server{{CertFile: "c.pem"}, {ClientCAFile: "ca.pem"}, {CertFile: "/nonexistent", KeyFile: "/nonexistent"}} {
		if _, err := s.Config(); err == nil {
			t.Errorf("%+v: no error", s)
		}
	}
	if _, err := (tlsconf.NATS{CertFile: "c.pem"}).Options(); err == nil {
		t.Error("NATS client cert without key: no error")
	}
}
