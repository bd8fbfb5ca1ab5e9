// Package aio starts the all-in-one for a load tool: an embedded NATS JetStream in a temporary
// directory, then allinone.Run with the tool's services on a free loopback port, its services
// configured by the tool's settings over the vendor sandbox's connector settings over the
// process environment.
package aio

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/natsembed"
	"github.com/omnibus-dev/omnibus/pkg/pii"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/services/omnibus/allinone"
	"github.com/omnibus-dev/omnibus/services/sandbox"
)

// Options say what to start.
type Options struct {
	// Name prefixes the temporary directory (omnibus-bench-<Name>-).
	Name string
	// NATSSync is the embedded JetStream's fsync ("always" or a duration); DatabaseURL a
	// Postgres instead of a throwaway one.
	NATSSync, DatabaseURL string
	// Services are the services to run (the sandbox among them, for its vendors).
	Services func() []service.Service
	// Env is the tool's own settings, looked up first; then the sandbox's connector settings
	// for the base URL, then Fallback (default the process environment).
	Env, Fallback func(string) (string, bool)
	// Log receives the services' logs.
	Log *slog.Logger
}

// Instance is a running all-in-one.
type Instance struct {
	// Base is its HTTP base URL; NATSURL its embedded NATS.
	Base, NATSURL string
	// Keys is the personal-data keyset the all-in-one seals events with (in its data dir): a
	// load tool that reads identities from the bus opens them with it (Sealer).
	Keys *pii.Keys
	stop context.CancelFunc
	done chan error
	ns   *natsembed.Server
	dir  string
}

// Start starts the all-in-one and returns once it listens; Close stops it.
func Start(ctx context.Context, o Options) (*Instance, error) {
	if o.Fallback == nil {
		o.Fallback = os.LookupEnv
	}
	dir, err := os.MkdirTemp("", "omnibus-bench-"+o.Name+"-")
	if err != nil {
		return nil, err
	}
	ns, err := natsembed.Start(natsembed.Options{StoreDir: filepath.Join(dir, "nats"), Sync: o.NATSSync})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	var mu sync.Mutex
	var connectors map[string]string // the sandbox's settings, once the base URL is known
	lookup := func(k string) (string, bool) {
		if v, ok := o.Env(k); ok {
			return v, true
		}
		mu.Lock()
		v, ok := connectors[k]
		mu.Unlock()
		if ok {
			return v, true
		}
		return o.Fallback(k)
	}
	actx, stop := context.WithCancel(context.WithoutCancel(ctx))
	in := &Instance{NATSURL: ns.URL(), stop: stop, done: make(chan error, 1), ns: ns, dir: dir}
	ready := make(chan string, 1)
	acfg := allinone.Config{HTTPAddr: "127.0.0.1:0", NATSURL: ns.URL(), DatabaseURL: o.DatabaseURL, DataDir: dir,
		NATSSync: o.NATSSync, ShutdownTimeout: 10 * time.Second, SimInterval: time.Second}
	go func() {
		in.done <- allinone.Run(actx, acfg, func(base string) []service.Service {
			mu.Lock()
			connectors = sandbox.ConnectorEnv(base)
			mu.Unlock()
			return o.Services()
		}, lookup, o.Log, func(base string) { ready <- base })
	}()
	select {
	case in.Base = <-ready:
		keys, _, err := pii.EnsureFile(acfg.KeysetFile(), "")
		if err != nil {
			in.Close()
			return nil, fmt.Errorf("the all-in-one's keyset: %w", err)
		}
		in.Keys = keys
		return in, nil
	case err := <-in.done:
		in.done <- err
		in.Close()
		return nil, fmt.Errorf("all-in-one: %w", err)
	case <-ctx.Done():
		in.Close()
		return nil, ctx.Err()
	}
}

// Sealer is the bus option that opens (and seals) personal data as the all-in-one's services do.
func (in *Instance) Sealer() bus.Option { return bus.WithDataProtector(pii.NewEvents(in.Keys)) }

// Done delivers the all-in-one's end (its error, nil when it stopped cleanly) should it stop
// before Close; a reader that takes the value puts it back for Close.
func (in *Instance) Done() chan error { return in.done }

// Close stops the all-in-one (waiting at most 30 s), the embedded NATS, and removes the
// directory. It returns the all-in-one's error, if it stopped with one.
func (in *Instance) Close() error {
	in.stop()
	var err error
	select {
	case err = <-in.done:
	case <-time.After(30 * time.Second):
		err = fmt.Errorf("the all-in-one did not stop within 30s")
	}
	in.ns.Shutdown()
	_ = os.RemoveAll(in.dir)
	return err
}
