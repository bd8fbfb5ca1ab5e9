package pgembed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// Host is the only address the server listens on.
	Host = "127.0.0.1"
	// Superuser is the name of the superuser initdb creates. It connects
	// without a password.
	Superuser = "postgres"

	// readyTimeout bounds the wait for a started server to accept
	// connections, whatever the deadline of the context given to Start.
	readyTimeout = 30 * time.Second
	// stopTimeout bounds the wait for a fast shutdown before Stop kills the
	// server, whatever the deadline of the context given to Stop.
	stopTimeout = 15 * time.Second
	// waitDelay bounds the wait for the output pipes to close after the
	// postmaster exited (backends may hold them a little longer).
	waitDelay = 5 * time.Second
	// portAttempts is how many free ports Start tries when Options.Port is 0
	// and the port it picked was taken before the server could bind it.
	portAttempts = 3
)

// reservedSettings are managed by pgembed through Options and may not appear
// in Options.Settings.
var reservedSettings = []string{"listen_addresses", "port"}

// Options configures [Start].
type Options struct {
	// DataDir is the data directory of the cluster. If empty, the cluster
	// lives in a new temporary directory that Stop removes. Otherwise the
	// directory is created and initialised unless it already holds a
	// cluster, and Stop keeps it.
	DataDir string

	// Port is the TCP port to listen on, on 127.0.0.1. Zero picks a free
	// port.
	Port int

	// Logger receives progress messages, and every line that initdb and
	// postgres print at debug level. Nil discards them.
	Logger *slog.Logger

	// Settings are extra server settings, passed to postgres as
	// -c name=value, for example {"fsync": "off", "synchronous_commit":
	// "off"} for tests. They override pgembed's defaults, such as
	// unix_socket_directories. listen_addresses and port are reserved.
	Settings map[string]string

	// GrantParentSearch matters only when the process runs as root, where
	// the server runs as the postgres OS user and must be able to enter
	// every parent directory of DataDir. Start fails, naming the directory,
	// when one is closed to that user; with GrantParentSearch it instead
	// adds search permission (x, not read) for that user's class — others,
	// or the group when the directory's group is postgres's — and logs each
	// directory it changed at warn level.
	GrantParentSearch bool
}

// ErrDataDirInUse is returned, wrapped, by [Start] when a running server
// already uses the data directory.
var ErrDataDirInUse = errors.New("the data directory is in use by a running PostgreSQL server")

// Server is a running PostgreSQL server started by [Start].
type Server struct {
	logger  *slog.Logger
	port    int
	dataDir string
	tempDir string // removed by Stop; empty for a caller-provided DataDir
	proc    *process

	stopOnce sync.Once
	stopErr  error
}

// Start initialises a cluster, unless opts.DataDir already holds one, starts
// a PostgreSQL server on it and waits until the server accepts connections.
// ctx bounds the start-up only, never the lifetime of the server; Start waits
// at most 30 seconds for the server to accept connections. Call
// [Server.Stop] to stop the server.
//
// Start returns an error wrapping [ErrNoBinaries] when PostgreSQL is not
// installed.
func Start(ctx context.Context, opts Options) (_ *Server, err error) {
	if err := platformSupported(); err != nil {
		return nil, err
	}
	if opts.Port < 0 || opts.Port > 65535 {
		return nil, fmt.Errorf("pgembed: invalid port %d", opts.Port)
	}
	if err := checkSettings(opts.Settings); err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	bins, err := findBinaries()
	if err != nil {
		return nil, err
	}
	owner, err := lookupServerUser()
	if err != nil {
		return nil, err
	}
	begin := time.Now()

	s := &Server{logger: logger}
	defer func() {
		if err != nil {
			_ = s.removeTempDir()
		}
	}()
	socketDir := "" // no Unix socket unless we own a private directory for it
	if opts.DataDir == "" {
		if s.tempDir, err = os.MkdirTemp("", "pgembed-"); err != nil {
			return nil, fmt.Errorf("pgembed: creating temporary directory: %w", err)
		}
		if err := owner.chown(s.tempDir); err != nil {
			return nil, err
		}
		s.dataDir = filepath.Join(s.tempDir, "data")
		socketDir = s.tempDir
	} else {
		if s.dataDir, err = filepath.Abs(opts.DataDir); err != nil {
			return nil, fmt.Errorf("pgembed: data directory: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(s.dataDir), 0o755); err != nil {
			return nil, fmt.Errorf("pgembed: creating data directory: %w", err)
		}
		if err := owner.reach(ctx, logger, s.dataDir, opts.GrantParentSearch); err != nil {
			return nil, err
		}
	}

	if isInitialized(s.dataDir) && !initInterrupted(s.dataDir) {
		logger.DebugContext(ctx, "reusing PostgreSQL data directory", "data_dir", s.dataDir)
		// A server killed with its parent (kill -9) leaves postmaster.pid
		// behind, which can stop the next server from starting.
		if err := clearStaleLock(ctx, logger, s.dataDir); err != nil {
			return nil, err
		}
	} else {
		if err := initdb(ctx, logger, bins.initdb, s.dataDir, owner, fsyncOff(opts.Settings)); err != nil {
			return nil, err
		}
	}

	for attempt := 1; ; attempt++ {
		port := opts.Port
		if port == 0 {
			if port, err = freePort(); err != nil {
				return nil, err
			}
		}
		proc, portTaken, err := s.launch(ctx, bins.postgres, owner, port, socketDir, opts.Settings)
		if err == nil {
			s.proc, s.port = proc, port
			break
		}
		if !portTaken || opts.Port != 0 || attempt == portAttempts {
			return nil, err
		}
		logger.DebugContext(ctx, "port taken by another process, retrying", "port", port, "error", err)
	}
	logger.InfoContext(ctx, "PostgreSQL started",
		"url", s.URL(""), "data_dir", s.dataDir, "bin_dir", filepath.Dir(bins.postgres),
		"pid", s.proc.cmd.Process.Pid, "duration", time.Since(begin))
	return s, nil
}

// URL returns a connection URL for database dbname ("postgres" if empty) as
// the superuser, for example
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable.
func (s *Server) URL(dbname string) string {
	return connURL(s.port, dbname)
}

// Port returns the TCP port the server listens on.
func (s *Server) Port() int { return s.port }

// DataDir returns the absolute path of the data directory.
func (s *Server) DataDir() string { return s.dataDir }

// Done returns a channel that is closed when the server process has exited,
// whether because of Stop or not.
func (s *Server) Done() <-chan struct{} { return s.proc.done }

// Stop shuts the server down and removes the temporary directory, if Start
// created one. It asks for a fast shutdown (SIGINT: open transactions are
// rolled back and clients disconnected) and kills the server if it has not
// exited when ctx is done or after 15 seconds, whichever comes first; so
// give it a context that is not already cancelled. Stop reports an error if
// the server had to be killed or had exited on its own before. It is safe to
// call more than once; later calls return the result of the first.
func (s *Server) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() { s.stopErr = s.stop(ctx) })
	return s.stopErr
}

func (s *Server) stop(ctx context.Context) error {
	begin := time.Now()
	var errs []error
	select {
	case <-s.proc.done:
		errs = append(errs, fmt.Errorf("pgembed: postgres exited before Stop (%s); last output:\n%s",
			exitStatus(s.proc.err), s.proc.out.Tail()))
	default:
		if err := s.proc.shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.removeTempDir(); err != nil {
		errs = append(errs, err)
	}
	err := errors.Join(errs...)
	if err != nil {
		s.logger.WarnContext(ctx, "PostgreSQL stopped with errors", "data_dir", s.dataDir, "duration", time.Since(begin), "error", err)
	} else {
		s.logger.InfoContext(ctx, "PostgreSQL stopped", "data_dir", s.dataDir, "duration", time.Since(begin))
	}
	return err
}

func (s *Server) removeTempDir() error {
	if s.tempDir == "" {
		return nil
	}
	if err := os.RemoveAll(s.tempDir); err != nil {
		return fmt.Errorf("pgembed: removing temporary directory: %w", err)
	}
	return nil
}

// launch starts postgres on port and waits until it accepts connections.
// portTaken reports a failure because another process holds the port.
func (s *Server) launch(ctx context.Context, postgres string, owner *osUser, port int, socketDir string, settings map[string]string) (_ *process, portTaken bool, _ error) {
	args := []string{"-D", s.dataDir}
	for _, kv := range serverSettings(port, socketDir, settings) {
		args = append(args, "-c", kv)
	}
	//nolint:contextcheck // the server outlives ctx, which bounds only its start; Stop ends it
	proc, err := startProcess(postgres, args, owner, newOutputLog(s.logger, "postgres"))
	if err != nil {
		return nil, false, err
	}
	err = waitReady(ctx, proc, connURL(port, ""), s.dataDir)
	if err == nil {
		return proc, false, nil
	}
	proc.kill()
	tail := proc.out.Tail()
	portTaken = errors.Is(err, errForeignServer) ||
		strings.Contains(tail, "could not bind") || strings.Contains(tail, "already in use")
	return nil, portTaken, fmt.Errorf("pgembed: starting postgres on port %d: %w; last output:\n%s", port, err, tail)
}

// errForeignServer means that another PostgreSQL server answered on the port
// picked for ours.
var errForeignServer = errors.New("another server answers on this port")

// waitReady polls the server until it accepts connections, it exits, or ctx
// is done, waiting at most readyTimeout.
func waitReady(ctx context.Context, proc *process, connString, dataDir string) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		return fmt.Errorf("parsing connection URL: %w", err)
	}
	cfg.ConnectTimeout = time.Second
	var lastErr error
	for {
		select {
		case <-proc.done:
			return fmt.Errorf("postgres exited before accepting connections (%s)", exitStatus(proc.err))
		default:
		}
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			var dir string
			err = conn.QueryRow(ctx, "SHOW data_directory").Scan(&dir)
			_ = conn.Close(ctx)
			if err != nil {
				return fmt.Errorf("querying new server: %w", err)
			}
			if filepath.Clean(dir) != filepath.Clean(dataDir) {
				return fmt.Errorf("%w (data directory %s)", errForeignServer, dir)
			}
			return nil
		}
		lastErr = err
		select {
		case <-proc.done:
			return fmt.Errorf("postgres exited before accepting connections (%s)", exitStatus(proc.err))
		case <-ctx.Done():
			return fmt.Errorf("waiting for postgres to accept connections: %w (last attempt: %w)", ctx.Err(), lastErr)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// initdb creates a cluster in dataDir. While initdb runs, a marker file
// beside dataDir (initMarker) says so: a process killed during initdb leaves
// it behind with a half-made cluster that later starts would otherwise take
// for a real one (PG_VERSION is written early), and the next Start empties
// dataDir and begins again. dataDir itself is never replaced, so it may be a
// mount point.
func initdb(ctx context.Context, logger *slog.Logger, path, dataDir string, owner *osUser, noSync bool) error {
	if err := os.MkdirAll(filepath.Dir(dataDir), 0o755); err != nil {
		return fmt.Errorf("pgembed: creating data directory: %w", err)
	}
	marker := initMarker(dataDir)
	entries, err := os.ReadDir(dataDir)
	switch {
	case err == nil && len(entries) > 0 && initInterrupted(dataDir):
		logger.InfoContext(ctx, "removing the half-made cluster of an interrupted initdb", "data_dir", dataDir)
		for _, e := range entries {
			if err := os.RemoveAll(filepath.Join(dataDir, e.Name())); err != nil {
				return fmt.Errorf("pgembed: removing an interrupted initdb: %w", err)
			}
		}
	case err == nil && len(entries) > 0:
		return fmt.Errorf("pgembed: data directory %s is not empty but holds no cluster (no PG_VERSION)", dataDir)
	}
	if err := os.Mkdir(dataDir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("pgembed: creating data directory: %w", err)
	}
	if err := owner.chown(dataDir); err != nil {
		return err
	}
	if err := os.WriteFile(marker, []byte("initdb of "+dataDir+" in progress\n"), 0o600); err != nil {
		return fmt.Errorf("pgembed: %w", err)
	}
	if !noSync {
		syncDir(filepath.Dir(dataDir))
	}
	args := []string{
		"-D", dataDir,
		"-A", "trust",
		"-U", Superuser,
		"-E", "UTF8",
		"--locale=C",
	}
	if noSync {
		// The server will not fsync either; don't wait for initdb to.
		args = append(args, "--no-sync")
	}
	begin := time.Now()
	out := newOutputLog(logger, "initdb")
	cmd := exec.CommandContext(ctx, path, args...)
	configureCmd(cmd, owner, out)
	if err := cmd.Run(); err != nil {
		hint := ""
		if owner != nil {
			hint = fmt.Sprintf(" (running as OS user %q: every parent directory of %s must be searchable by it)", owner.name, dataDir)
		}
		return fmt.Errorf("pgembed: initdb failed%s: %w; last output:\n%s", hint, err, out.Tail())
	}
	if err := os.Remove(marker); err != nil {
		return fmt.Errorf("pgembed: %w", err)
	}
	if !noSync {
		syncDir(filepath.Dir(dataDir))
	}
	logger.DebugContext(ctx, "initialised PostgreSQL data directory", "data_dir", dataDir, "duration", time.Since(begin))
	return nil
}

// initMarker is the file that says an initdb of dataDir is in progress.
func initMarker(dataDir string) string {
	return filepath.Join(filepath.Dir(dataDir), "."+filepath.Base(dataDir)+".initdb")
}

// initInterrupted reports whether an initdb of dataDir began and did not finish.
func initInterrupted(dataDir string) bool {
	_, err := os.Stat(initMarker(dataDir))
	return err == nil
}

// syncDir flushes a directory's entries to disk, best effort.
func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		_ = f.Sync()
		_ = f.Close()
	}
}

// isInitialized reports whether dataDir holds a cluster.
func isInitialized(dataDir string) bool {
	_, err := os.Stat(filepath.Join(dataDir, "PG_VERSION"))
	return err == nil
}

// checkSettings rejects settings that pgembed manages itself or that cannot
// be passed as -c name=value.
func checkSettings(settings map[string]string) error {
	for name := range settings {
		if name == "" || strings.ContainsAny(name, "= \t\n") {
			return fmt.Errorf("pgembed: invalid setting name %q", name)
		}
		if slices.Contains(reservedSettings, strings.ToLower(name)) {
			return fmt.Errorf("pgembed: setting %q is managed by pgembed; use Options instead", name)
		}
	}
	return nil
}

// fsyncOff reports whether settings turn fsync off.
func fsyncOff(settings map[string]string) bool {
	for name, value := range settings {
		if strings.EqualFold(name, "fsync") {
			switch strings.ToLower(strings.TrimSpace(value)) {
			case "off", "false", "no", "0":
				return true
			}
		}
	}
	return false
}

// serverSettings returns the name=value settings for postgres: pgembed's
// defaults followed by the caller's, sorted by name. postgres applies them
// in order, so the caller's win.
func serverSettings(port int, socketDir string, extra map[string]string) []string {
	kvs := []string{
		"listen_addresses=" + Host,
		"port=" + strconv.Itoa(port),
		"unix_socket_directories=" + socketDir,
	}
	for _, name := range slices.Sorted(maps.Keys(extra)) {
		kvs = append(kvs, name+"="+extra[name])
	}
	return kvs
}

func connURL(port int, dbname string) string {
	if dbname == "" {
		dbname = "postgres"
	}
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(Superuser),
		Host:     net.JoinHostPort(Host, strconv.Itoa(port)),
		Path:     "/" + dbname,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// freePort returns a TCP port on Host that is free right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(Host, "0"))
	if err != nil {
		return 0, fmt.Errorf("pgembed: finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// process is a running postgres.
type process struct {
	cmd  *exec.Cmd
	out  *outputLog
	done chan struct{} // closed when the process has exited
	err  error         // the result of cmd.Wait; read it only after done is closed
}

func startProcess(path string, args []string, owner *osUser, out *outputLog) (*process, error) {
	cmd := exec.Command(path, args...)
	configureCmd(cmd, owner, out)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("pgembed: starting postgres: %w", err)
	}
	p := &process{cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		out.flush()
		close(p.done)
	}()
	return p, nil
}

// configureCmd sets what initdb and postgres have in common.
func configureCmd(cmd *exec.Cmd, owner *osUser, out *outputLog) {
	cmd.Dir = "/" // the working directory of the parent may be closed to owner
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = sysProcAttr(owner)
	cmd.WaitDelay = waitDelay
}

// shutdown asks for a fast shutdown and kills the server if it does not exit
// in time.
func (p *process) shutdown(ctx context.Context) error {
	if err := interrupt(p.cmd.Process); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.kill()
		return fmt.Errorf("pgembed: signalling postgres: %w", err)
	}
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	var cause error
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("pgembed: postgres shut down with %w; last output:\n%s", p.err, p.out.Tail())
		}
		return nil
	case <-ctx.Done():
		cause = ctx.Err()
	case <-timer.C:
		cause = fmt.Errorf("no exit after %s", stopTimeout)
	}
	p.kill()
	return fmt.Errorf("pgembed: postgres did not shut down in time and was killed: %w", cause)
}

// kill kills the server and its backends and waits for it to exit.
func (p *process) kill() {
	_ = killGroup(p.cmd.Process)
	<-p.done
}

func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}
