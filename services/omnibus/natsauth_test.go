package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/natsembed"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/services/omnibus/allinone"
)

// violationLog is a logger for an all-in-one under test that discards everything but the
// embedded NATS server's authorization and permission violations, which fail the test at its
// end: every service must do its work within the permissions its spec implies (pkg/natsauth).
func violationLog(t *testing.T) *slog.Logger {
	t.Helper()
	h := &violations{}
	t.Cleanup(func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, v := range h.seen {
			t.Errorf("NATS refused a service (its spec lacks what it does): %s", v)
		}
	})
	return slog.New(h)
}

type violations struct {
	mu   sync.Mutex
	seen []string
}

func (v *violations) Enabled(context.Context, slog.Level) bool { return true }
func (v *violations) WithAttrs([]slog.Attr) slog.Handler       { return v }
func (v *violations) WithGroup(string) slog.Handler            { return v }
func (v *violations) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "Violation") {
		v.mu.Lock()
		defer v.mu.Unlock()
		if len(v.seen) < 20 {
			v.seen = append(v.seen, r.Message)
		}
	}
	return nil
}

// The server holds every service to its spec: one case per service, each connecting as its own
// user (the all-in-one's), publishing what it declares (accepted) and what it does not — a
// forged inbound event, another service's subject, a stream deletion — refused by the server.
// Anonymous clients are refused; the operators' reader reads OMNI_DESK and publishes nothing.
func TestNATSPermissionsFromSpecs(t *testing.T) {
	t.Parallel()
	svcs := allServices()
	users, err := allinone.NATSUsers(t.TempDir(), svcs)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := natsembed.Start(natsembed.Options{Users: users.Server()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	admin, err := nats.Connect(ns.ClientURL(), users.Admin().Options()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	adminBus, err := bus.Connect(admin)
	if err != nil {
		t.Fatal(err)
	}
	if err := adminBus.Provision(context.Background()); err != nil {
		t.Fatal(err)
	}

	if nc, err := nats.Connect(ns.ClientURL()); err == nil {
		nc.Close()
		t.Error("an anonymous client connected")
	}

	concrete := func(pattern string) string {
		return strings.NewReplacer("*", "t", ">", "t").Replace(pattern)
	}
	forged := []string{"omni.in.forged.message", "omni.desk.forged", "$JS.API.STREAM.DELETE.OMNI_IN", "$JS.API.STREAM.PURGE.OMNI_IN"}
	for _, s := range svcs {
		if s.NoBus {
			continue
		}
		t.Run(s.Name, func(t *testing.T) {
			user, ok := users.Service(s.Name)
			if !ok {
				t.Fatalf("no NATS user for %s", s.Name)
			}
			nc, err := nats.Connect(ns.ClientURL(), append(user.Options(), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))...)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			// The server answers a refused publish with -ERR before the PONG of the flush that
			// follows it, and the client keeps it as its last error.
			try := func(subject string) error {
				if err := nc.Publish(subject, []byte("{}")); err != nil {
					return err
				}
				if err := nc.Flush(); err != nil {
					return err
				}
				if err := nc.LastError(); err != nil && strings.Contains(err.Error(), strconv.Quote(subject)) {
					return err
				}
				return nil
			}
			for _, r := range s.Publishes {
				if err := try(concrete(r.Subject)); err != nil {
					t.Errorf("publishing its declared %s: %v", r.Subject, err)
				}
			}
			outside := slices.Clone(forged)
			for _, other := range svcs { // another service's subject it does not declare
				for _, r := range other.Publishes {
					if subj := concrete(r.Subject); !declares(s, subj) && len(outside) == len(forged) {
						outside = append(outside, subj)
					}
				}
			}
			for _, subj := range outside {
				if err := try(subj); !errors.Is(err, nats.ErrPermissionViolation) {
					t.Errorf("publishing %s outside its spec: %v, want the server's permissions violation", subj, err)
				}
			}
			if _, err := nc.SubscribeSync("omni.>"); err == nil {
				if err := nc.Flush(); err == nil {
					if err := nc.LastError(); err == nil || !strings.Contains(err.Error(), "Subscription to \"omni.>\"") {
						t.Errorf("subscribing to omni.> (every event on the bus): %v, want the server's permissions violation", err)
					}
				}
			}
		})
	}

	t.Run("reader", func(t *testing.T) {
		errs := make(chan error, 4)
		nc, err := nats.Connect(ns.ClientURL(), users.Reader().Nkey(), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if _, err := adminBus.JetStream().Publish(context.Background(), "omni.desk.t", []byte("{}")); err != nil {
			t.Fatal(err)
		}
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cons, err := js.CreateOrUpdateConsumer(ctx, bus.StreamDesk, jetstream.ConsumerConfig{Durable: "bi-export", AckPolicy: jetstream.AckExplicitPolicy})
		if err != nil {
			t.Fatalf("the reader's durable consumer on OMNI_DESK: %v", err)
		}
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("the reader reading OMNI_DESK: %v", err)
		}
		if err := msg.Ack(); err != nil {
			t.Fatal(err)
		}
		if err := nc.Publish("omni.in.forged.message", []byte("{}")); err == nil {
			_ = nc.Flush()
		}
		select {
		case err := <-errs:
			if !errors.Is(err, nats.ErrPermissionViolation) {
				t.Errorf("the reader publishing: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("the reader published to omni.in.forged.message")
		}
	})
}

// declares reports whether s declares publishing subject.
func declares(s service.Service, subject string) bool {
	for _, r := range s.Publishes {
		if bus.SubjectMatches(r.Subject, subject) || bus.SubjectMatches(r.Subject+".>", subject) {
			return true
		}
	}
	return strings.HasPrefix(subject, "omni.audit."+s.Name) || strings.HasPrefix(subject, "omni.ops.alert.") || subject == bus.SubjectDLQ(s.Name)
}

// deploy/nats/auth.conf is what `omnibus nats config` generates from the specs now, and the
// real server, given deploy/nats/nats.conf (which includes it) and the public keys `omnibus nats
// keys` writes, lets each service in with its seed and holds it to its spec; the cluster's
// configuration loads the same users.
func TestDeployNATSConfig(t *testing.T) {
	root := filepath.Join("..", "..")
	var want strings.Builder
	if err := natsCommand([]string{"config"}, &want); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, "deploy", "nats", "auth.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want.String() {
		t.Fatal("deploy/nats/auth.conf is stale: go run ./services/omnibus nats config > deploy/nats/auth.conf")
	}

	keys := t.TempDir()
	if err := writeNATSKeys(keys, io.Discard); err != nil {
		t.Fatal(err)
	}
	env, err := os.ReadFile(filepath.Join(keys, "nkeys.env"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(env), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(k, "#") {
			t.Setenv(k, v)
		}
	}
	cluster, err := server.ProcessConfigFile(filepath.Join(root, "deploy", "nats", "nats-cluster.conf"))
	if err != nil {
		t.Fatalf("nats-cluster.conf: %v", err)
	}
	opts, err := server.ProcessConfigFile(filepath.Join(root, "deploy", "nats", "nats.conf"))
	if err != nil {
		t.Fatalf("nats.conf: %v", err)
	}
	if len(opts.Nkeys) < 3 || len(cluster.Nkeys) != len(opts.Nkeys) {
		t.Fatalf("users: nats.conf %d, nats-cluster.conf %d", len(opts.Nkeys), len(cluster.Nkeys))
	}
	opts.Host, opts.Port, opts.HTTPPort, opts.StoreDir, opts.NoSigs, opts.NoLog = "127.0.0.1", -1, 0, t.TempDir(), true, true
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	if nc, err := nats.Connect(ns.ClientURL()); err == nil {
		nc.Close()
		t.Error("nats.conf let an anonymous client in")
	}
	seed := func(name string) nats.Option {
		opt, err := nats.NkeyOptionFromSeed(filepath.Join(keys, name+".nk"))
		if err != nil {
			t.Fatal(err)
		}
		return opt
	}
	nc, err := nats.Connect(ns.ClientURL(), seed("unifier"), nats.CustomInboxPrefix(bus.Inbox("unifier")), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatalf("the unifier with its seed: %v", err)
	}
	defer nc.Close()
	for subject, allowed := range map[string]bool{"omni.desk.message.added": true, "omni.in.forged.message": false} {
		if err := nc.Publish(subject, []byte("{}")); err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		refused := nc.LastError() != nil && strings.Contains(nc.LastError().Error(), strconv.Quote(subject))
		if refused == allowed {
			t.Errorf("the unifier publishing %s: refused=%v", subject, refused)
		}
	}
}

// adminNkey is the option that connects a test to an all-in-one run on dataDir as its
// administrator (the seed it keeps in nats/admin.nk).
func adminNkey(t *testing.T, dataDir string) nats.Option {
	t.Helper()
	opt, err := nats.NkeyOptionFromSeed(filepath.Join(dataDir, "nats", allinone.AdminSeedFile))
	if err != nil {
		t.Fatalf("the all-in-one's admin seed: %v", err)
	}
	return opt
}

// OMNIBUS_TLS_LOCAL: the all-in-one makes a development CA and serves HTTPS and its embedded
// NATS over TLS 1.3 only; its own services connect through it; a TLS 1.2 client is refused.
func TestAllInOneLocalTLS(t *testing.T) {
	t.Parallel()
	natsAddr := faultFreeAddr(t)
	cfg := allinone.Config{
		HTTPAddr: "127.0.0.1:0", NATSAddr: natsAddr, NATSSync: "2m", DataDir: t.TempDir(),
		Simulate: false, SimInterval: time.Hour, LogLevel: "warn", ShutdownTimeout: 15 * time.Second, TLSLocal: true,
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	env := localEnv(cfg.DataDir)
	env["DESK_DEV_LOGIN"], env["DESK_AGENTS"] = "true", "demo"
	ctx, cancel := context.WithCancel(context.Background())
	baseCh := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- allinone.Run(ctx, cfg, func(base string) []service.Service {
			env["DESK_PUBLIC_URL"] = base
			return services()
		}, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, violationLog(t), func(b string) { baseCh <- b })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("all-in-one stopped with %v", err)
		}
	})
	var base string
	select {
	case base = <-baseCh:
	case err := <-done:
		t.Fatalf("all-in-one with OMNIBUS_TLS_LOCAL exited: %v", err)
	}
	if !strings.HasPrefix(base, "https://") {
		t.Fatalf("base %s, want https", base)
	}
	caFile := filepath.Join(cfg.DataDir, "tls", "ca.pem")
	ca, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca)
	for _, c := range []struct {
		name string
		tls  *tls.Config
		ok   bool
	}{
		{"TLS 1.3 trusting the local CA", &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS13}, true},
		{"TLS 1.2", &tls.Config{RootCAs: roots, MaxVersion: tls.VersionTLS12}, false},
		{"not trusting the local CA", &tls.Config{MinVersion: tls.VersionTLS13}, false},
	} {
		client := http.Client{Transport: &http.Transport{TLSClientConfig: c.tls}, Timeout: 10 * time.Second}
		resp, err := client.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
		}
		if (err == nil && resp.StatusCode == http.StatusOK) != c.ok {
			t.Errorf("HTTPS, %s: %v (want served: %v)", c.name, err, c.ok)
		}
	}
	natsURL := "tls://" + natsAddr
	nc, err := nats.Connect(natsURL, adminNkey(t, cfg.DataDir), nats.RootCAs(caFile))
	if err != nil {
		t.Fatalf("NATS over TLS as admin: %v", err)
	}
	nc.Close()
	if nc, err := nats.Connect(natsURL, adminNkey(t, cfg.DataDir), nats.Secure(&tls.Config{RootCAs: roots, MaxVersion: tls.VersionTLS12})); err == nil {
		nc.Close()
		t.Error("NATS let a TLS 1.2 client in")
	}
}
