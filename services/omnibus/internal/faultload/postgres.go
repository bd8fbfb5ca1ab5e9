package faultload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/omnibus-dev/omnibus/pkg/pgembed"
)

// Postgres is a PostgreSQL server on a kept data directory and a fixed port — so its URL stays
// the same across restarts — that the fault suite can stop, start again, pause and resume.
type Postgres struct {
	dir      string
	log      *slog.Logger
	settings map[string]string

	mu     sync.Mutex
	port   int
	srv    *pgembed.Server // nil while stopped
	paused bool
}

// testSettings make the server cheap on a loaded test machine. It is always stopped cleanly
// (the suite stops, pauses and resumes it, never kills it), so nothing relies on fsync.
var testSettings = map[string]string{"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}

// StartPostgres initialises a cluster in dir (unless it holds one) and starts it on a free
// port, which later starts reuse. It returns an error wrapping pgembed.ErrNoBinaries when
// PostgreSQL is not installed.
func StartPostgres(ctx context.Context, dir string, log *slog.Logger) (*Postgres, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Postgres{dir: dir, log: log, settings: testSettings}
	if err := p.Start(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// URL is the connection URL of database postgres as the superuser.
func (p *Postgres) URL() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return fmt.Sprintf("postgres://%s@%s:%d/postgres?sslmode=disable", pgembed.Superuser, pgembed.Host, p.port)
}

// Start starts the server if it is stopped, on the port of the first start.
func (p *Postgres) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.srv != nil {
		return nil
	}
	srv, err := pgembed.Start(ctx, pgembed.Options{DataDir: p.dir, Port: p.port, Logger: p.log, Settings: p.settings,
		GrantParentSearch: true})
	if err != nil {
		return err
	}
	p.srv, p.port = srv, srv.Port()
	return nil
}

// Stop shuts the server down (a fast shutdown: clients are disconnected), resuming it first if
// it is paused.
func (p *Postgres) Stop(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.srv == nil {
		return nil
	}
	var errs []error
	if p.paused {
		errs = append(errs, p.signal(sigCont))
		p.paused = false
	}
	errs = append(errs, p.srv.Stop(ctx))
	p.srv = nil
	return errors.Join(errs...)
}

// Pause stops every process of the server (SIGSTOP to the postmaster, then to each of its
// backends and auxiliary processes): connections stay open and nothing answers, as on a hung
// host. Linux only.
func (p *Postgres) Pause() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.srv == nil {
		return errors.New("faultload: postgres is stopped")
	}
	if err := p.signal(sigStop); err != nil {
		return err
	}
	p.paused = true
	return nil
}

// Resume continues a paused server (SIGCONT).
func (p *Postgres) Resume() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.paused {
		return nil
	}
	p.paused = false
	return p.signal(sigCont)
}

// Close resumes and stops the server.
func (p *Postgres) Close(ctx context.Context) error { return p.Stop(ctx) }

// signal sends sig to the postmaster and its children; the postmaster's pid is the first line
// of postmaster.pid in the data directory.
func (p *Postgres) signal(sig serverSignal) error {
	b, err := os.ReadFile(filepath.Join(p.dir, "postmaster.pid"))
	if err != nil {
		return fmt.Errorf("faultload: the postmaster's pid: %w", err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 1 {
		return fmt.Errorf("faultload: postmaster.pid starts with %q, not a pid", first)
	}
	return signalServer(pid, sig)
}
