//go:build unix

package pgembed_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/omnibus-dev/omnibus/pkg/pgembed"
)

// start starts a server that is stopped when the test ends. It skips the
// test when PostgreSQL is not installed, except on CI.
func start(t *testing.T, opts pgembed.Options) *pgembed.Server {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s, err := pgembed.Start(t.Context(), opts)
	skipIfNoBinaries(t, err)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		// Stop is idempotent, so tests may stop the server themselves.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = s.Stop(ctx)
	})
	return s
}

func skipIfNoBinaries(t *testing.T, err error) {
	t.Helper()
	if errors.Is(err, pgembed.ErrNoBinaries) && os.Getenv("CI") != "true" {
		t.Skip(err)
	}
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatalf("connecting to %s: %v", url, err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func show(t *testing.T, conn *pgx.Conn, setting string) string {
	t.Helper()
	var v string
	if err := conn.QueryRow(t.Context(), "SHOW "+setting).Scan(&v); err != nil {
		t.Fatalf("SHOW %s: %v", setting, err)
	}
	return v
}

func TestStartStop(t *testing.T) {
	t.Parallel()
	s := start(t, pgembed.Options{})

	url := s.URL("postgres")
	want := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.Port())
	if url != want {
		t.Errorf("URL = %q, want %q", url, want)
	}
	if got := s.URL(""); got != want {
		t.Errorf(`URL("") = %q, want %q`, got, want)
	}

	conn := connect(t, url)
	var currentUser string
	var superuser bool
	if err := conn.QueryRow(t.Context(), "SELECT current_user, usesuper FROM pg_user WHERE usename = current_user").Scan(&currentUser, &superuser); err != nil {
		t.Fatal(err)
	}
	if currentUser != "postgres" || !superuser {
		t.Errorf("connected as %q (superuser %v), want superuser postgres", currentUser, superuser)
	}
	for setting, want := range map[string]string{
		"listen_addresses": "127.0.0.1",
		"port":             strconv.Itoa(s.Port()),
		"fsync":            "on",
		"server_encoding":  "UTF8",
		"lc_collate":       "C",
		"data_directory":   s.DataDir(),
	} {
		if got := show(t, conn, setting); got != want {
			t.Errorf("%s = %q, want %q", setting, got, want)
		}
	}
	// The Unix socket lives in the temporary directory, next to the data.
	if got, want := show(t, conn, "unix_socket_directories"), filepath.Dir(s.DataDir()); got != want {
		t.Errorf("unix_socket_directories = %q, want %q", got, want)
	}
	if os.Geteuid() == 0 {
		checkOwnedByPostgres(t, s.DataDir())
	}
	if err := conn.Close(t.Context()); err != nil {
		t.Fatal(err)
	}

	begin := time.Now()
	if err := s.Stop(t.Context()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	t.Logf("Stop took %s", time.Since(begin))
	select {
	case <-s.Done():
	default:
		t.Error("Done not closed after Stop")
	}
	if err := s.Stop(t.Context()); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(s.DataDir())); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary directory not removed: stat: %v", err)
	}
	if c, err := pgx.Connect(t.Context(), url); err == nil {
		_ = c.Close(t.Context())
		t.Error("server still accepts connections after Stop")
	}
}

func checkOwnedByPostgres(t *testing.T, path string) {
	t.Helper()
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if uid := strconv.Itoa(int(fi.Sys().(*syscall.Stat_t).Uid)); uid != u.Uid {
		t.Errorf("%s is owned by uid %s, want postgres (%s)", path, uid, u.Uid)
	}
}

func TestOptions(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	var logs syncBuffer
	s := start(t, pgembed.Options{
		Port:   port,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Settings: map[string]string{
			"fsync":                   "off",
			"synchronous_commit":      "off",
			"unix_socket_directories": "",
			"application_name":        "pgembed test",
		},
	})
	if s.Port() != port {
		t.Errorf("Port = %d, want %d", s.Port(), port)
	}
	if want := fmt.Sprintf("@127.0.0.1:%d/", port); !strings.Contains(s.URL("db"), want) {
		t.Errorf("URL %q does not contain %q", s.URL("db"), want)
	}
	conn := connect(t, s.URL(""))
	for setting, want := range map[string]string{
		"fsync":                   "off",
		"synchronous_commit":      "off",
		"unix_socket_directories": "",
	} {
		if got := show(t, conn, setting); got != want {
			t.Errorf("%s = %q, want %q", setting, got, want)
		}
	}
	if err := s.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"program=initdb",
		"Sync to disk skipped", // initdb --no-sync, because fsync=off
		"database system is ready to accept connections",
		"database system is shut down",
		`msg="PostgreSQL started"`,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, logs.String())
		}
	}
}

func TestDataDirPersists(t *testing.T) {
	t.Parallel()
	// When running as root, the server runs as the postgres user, which
	// must be able to reach the data directory.
	parent, err := os.MkdirTemp("", "pgembed-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(parent, "nested", "data")

	s := start(t, pgembed.Options{DataDir: dataDir})
	if s.DataDir() != dataDir {
		t.Errorf("DataDir = %q, want %q", s.DataDir(), dataDir)
	}
	conn := connect(t, s.URL(""))
	if _, err := conn.Exec(t.Context(), "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('hello')"); err != nil {
		t.Fatal(err)
	}
	if got := show(t, conn, "unix_socket_directories"); got != "" {
		t.Errorf("unix_socket_directories = %q, want none for a caller-provided DataDir", got)
	}
	_ = conn.Close(t.Context())
	if err := s.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); err != nil {
		t.Fatalf("data directory not kept: %v", err)
	}

	// Restart on the same directory: no initdb, data still there.
	var logs syncBuffer
	s = start(t, pgembed.Options{
		DataDir: dataDir,
		Logger:  slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if strings.Contains(logs.String(), "program=initdb") {
		t.Error("initdb ran on an initialised data directory")
	}
	conn = connect(t, s.URL(""))
	var v string
	if err := conn.QueryRow(t.Context(), "SELECT v FROM kept").Scan(&v); err != nil || v != "hello" {
		t.Fatalf("reading kept row after restart: %q, %v", v, err)
	}
	_ = conn.Close(t.Context())

	// A server that dies on its own closes Done, and Stop reports it.
	pid := postmasterPID(t, dataDir)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed after the server died")
	}
	if err := s.Stop(t.Context()); err == nil || !strings.Contains(err.Error(), "exited before Stop") {
		t.Errorf("Stop after crash = %v, want an error saying it exited before Stop", err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); err != nil {
		t.Errorf("data directory not kept: %v", err)
	}
}

// TestParentDeathKillsServer kills a process that started a server, as a
// crashing test binary or all-in-one binary would die, and checks that the
// server and its backends die with it.
func TestParentDeathKillsServer(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("parent-death signal is Linux-only")
	}
	t.Parallel()
	helper, dataDir := runHelper(t)
	// The helper dies without Stop, so clean its temporary directory.
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(dataDir)) })

	pid := postmasterPID(t, dataDir)
	procs := append([]int{pid}, childrenOf(pid)...)
	if len(procs) < 2 {
		t.Fatalf("found no backends of postmaster %d", pid)
	}
	if err := helper.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()

	deadline := time.Now().Add(10 * time.Second)
	for _, p := range procs {
		for alive(p) {
			if time.Now().After(deadline) {
				t.Fatalf("postgres process %d still alive after its parent died", p)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// runHelper runs the test binary as a parent process that starts a server
// (see helperMain) with env added to its environment, and returns it with
// the server's data directory once the server accepts connections. The
// helper is killed when the test ends.
func runHelper(t *testing.T, env ...string) (*exec.Cmd, string) {
	t.Helper()
	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(append(os.Environ(), helperEnv+"=1"), env...)
	helper.Stderr = t.Output()
	stdout, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = helper.Process.Kill()
		_ = helper.Wait()
	})
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Scan()
		line <- sc.Text()
		for sc.Scan() { // drain, so the helper never blocks on a full pipe
		}
	}()
	var dataDir string
	select {
	case l := <-line:
		if msg, ok := strings.CutPrefix(l, "ERROR "); ok {
			skipIfNoBinaries(t, errorFromMessage(msg))
			t.Fatalf("helper: %s", msg)
		}
		var ok bool
		if dataDir, ok = strings.CutPrefix(l, "READY "); !ok {
			t.Fatalf("helper printed %q", l)
		}
	case <-time.After(time.Minute):
		t.Fatal("helper did not start a server in time")
	}
	return helper, dataDir
}

// errorFromMessage maps the helper's error message back to ErrNoBinaries.
func errorFromMessage(msg string) error {
	if strings.Contains(msg, pgembed.ErrNoBinaries.Error()) {
		return pgembed.ErrNoBinaries
	}
	return errors.New(msg)
}

func TestStartErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts pgembed.Options
		want string
	}{
		{"reserved port", pgembed.Options{Settings: map[string]string{"port": "5432"}}, "managed by pgembed"},
		{"reserved listen_addresses", pgembed.Options{Settings: map[string]string{"Listen_Addresses": "*"}}, "managed by pgembed"},
		{"bad setting name", pgembed.Options{Settings: map[string]string{"a=b": "c"}}, "invalid setting name"},
		{"bad port", pgembed.Options{Port: 70000}, "invalid port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := pgembed.Start(t.Context(), tc.opts)
			if err == nil {
				_ = s.Stop(t.Context())
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Start error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// TestStartCancelled checks that a failed Start cleans up after itself. It
// is not parallel because it changes TMPDIR.
func TestStartCancelled(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	s, err := pgembed.Start(ctx, pgembed.Options{})
	skipIfNoBinaries(t, err)
	if err == nil {
		_ = s.Stop(t.Context())
		t.Fatal("Start succeeded")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Start error = %v, want context.Canceled", err)
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Errorf("Start left %v behind in TMPDIR", entries)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// postmasterPID reads the PID of the server from its postmaster.pid file.
func postmasterPID(t *testing.T, dataDir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		t.Fatalf("parsing postmaster.pid: %v", err)
	}
	return pid
}

// procStat returns the state and parent PID of a process from /proc.
func procStat(pid int) (state string, ppid int, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, false
	}
	// The command name, in parentheses, may contain spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return "", 0, false
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 2 {
		return "", 0, false
	}
	ppid, _ = strconv.Atoi(fields[1])
	return fields[0], ppid, true
}

// alive reports whether pid is running; zombies, which a container's init
// may never reap, count as dead.
func alive(pid int) bool {
	state, _, ok := procStat(pid)
	return ok && state != "Z" && state != "X"
}

func childrenOf(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var kids []int
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if _, ppid, ok := procStat(p); ok && ppid == pid {
			kids = append(kids, p)
		}
	}
	return kids
}

// syncBuffer is a bytes.Buffer safe for concurrent use, for log output.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
