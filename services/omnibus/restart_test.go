//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/pgembed"
	"github.com/omnibus-dev/omnibus/pkg/pii"
	"github.com/omnibus-dev/omnibus/services/example"
	"github.com/omnibus-dev/omnibus/services/unifier"
)

// TestRestartKeepsStore restarts the all-in-one — built with go build and run as a subprocess on
// one data dir, as `go run ./services/omnibus` is — three times while a vendor keeps posting
// signed webhooks: kill -9, a clean stop (SIGTERM), kill -9 again. After the last restart, once
// the system has settled, the unifier's store must equal a rebuild of it from the log (same
// customers, conversations and messages: nothing lost across the restarts), and hold every
// message the webhook acknowledged. Waits poll with generous deadlines; nothing is timed.
func TestRestartKeepsStore(t *testing.T) {
	t.Parallel()
	rig := newAIORig(t)
	rig.start()
	rig.waitReady()
	traffic := rig.sendTraffic()
	for i, how := range []string{"kill -9", "SIGTERM", "kill -9"} {
		traffic.waitMore(40)
		begin := time.Now()
		if how == "kill -9" {
			rig.kill()
		} else {
			rig.stop()
		}
		stopped := time.Since(begin)
		rig.start()
		rig.waitReady()
		t.Logf("restart %d (%s) after %d accepted webhooks: stopped in %s, ready %s later", i+1, how, traffic.count(),
			stopped.Round(time.Millisecond), (time.Since(begin) - stopped).Round(time.Millisecond))
	}
	traffic.waitMore(40)
	traffic.stop()
	t.Logf("traffic: %d webhooks accepted, %d answered 503 while starting, %d failed (process down)",
		traffic.count(), traffic.unavailable.Load(), traffic.failed.Load())
	// Messages in flight at the last kill -9 come back after the consumers' AckWait (30 s).
	rig.settle()
	live := rig.dump(rig.pgURL("postgres"))
	rebuilt := rig.rebuildFromLog()
	if live != rebuilt {
		t.Fatalf("after three restarts the unifier's store differs from a rebuild from the log\n--- live\n%s\n--- rebuilt\n%s", live, rebuilt)
	}
	rig.checkHolds(rig.pgURL("postgres"), traffic)
	rig.stop()
}

// TestWipedDatabaseRefusesThenRebuilds: with NATS's data kept and the database empty — Postgres
// wiped, or DATABASE_URL pointing at a new database — the all-in-one refuses to start, saying
// what disagrees and the ways out; with --rebuild it rebuilds the unifier's store from the log,
// equal to the store it had, and starts; a normal start follows.
func TestWipedDatabaseRefusesThenRebuilds(t *testing.T) {
	t.Parallel()
	rig := newAIORig(t)
	rig.start()
	rig.waitReady()
	traffic := rig.sendTraffic()
	traffic.waitMore(40)
	traffic.stop()
	rig.settle()
	before := rig.dump(rig.pgURL("postgres"))
	rig.stop()

	// DATABASE_URL at a new database, on the kept cluster run by the test.
	pgDir := filepath.Join(rig.dir, "postgres")
	pg, err := pgembed.Start(context.Background(), pgembed.Options{DataDir: pgDir, GrantParentSearch: true})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := pgxpool.New(context.Background(), pg.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(context.Background(), "CREATE DATABASE fresh"); err != nil {
		t.Fatal(err)
	}
	admin.Close()
	rig.start("DATABASE_URL=" + pg.URL("fresh"))
	rig.waitRefusal("Postgres (" + pg.URL("fresh") + "): empty")
	if err := pg.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	// Postgres wiped.
	if err := os.RemoveAll(pgDir); err != nil {
		t.Fatal(err)
	}
	rig.start()
	rig.waitRefusal("Postgres (" + pgDir + "): empty")

	rig.start("--rebuild")
	rig.waitReady()
	if !strings.Contains(rig.output(), "session store rebuilt from the log") {
		t.Errorf("no rebuild in the log of the --rebuild start:\n%s", rig.output())
	}
	rig.settle()
	after := rig.dump(rig.pgURL("postgres"))
	if after != before {
		t.Fatalf("the store rebuilt by --rebuild differs from the one that was wiped\n--- before\n%s\n--- rebuilt\n%s", before, after)
	}
	rig.checkHolds(rig.pgURL("postgres"), traffic)
	rig.stop()

	// The rebuilt database belongs with the log: a plain start starts.
	rig.start()
	rig.waitReady()
	rig.stop()
}

// aioRig runs the all-in-one binary as a subprocess on a fixed data dir and fixed ports.
type aioRig struct {
	t                  *testing.T
	bin, dir, secret   string
	httpAddr, natsAddr string

	mu   sync.Mutex
	cmd  *exec.Cmd
	out  *bytes.Buffer // the current run's stdout and stderr
	done chan struct{} // closed when the current run exited
	err  error         // its exit status, once done
}

func newAIORig(t *testing.T) *aioRig {
	t.Helper()
	if _, err := exec.LookPath("postgres"); err != nil && os.Getenv("CI") != "true" {
		if found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres"); len(found) == 0 {
			t.Skip("needs the PostgreSQL server binaries (apt-get install -y postgresql)")
		}
	}
	r := &aioRig{t: t, dir: t.TempDir(), secret: "restart-secret", httpAddr: pickAddr(t), natsAddr: pickAddr(t)}
	r.bin = filepath.Join(t.TempDir(), "omnibus")
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go is not on PATH: %v", err)
	}
	if out, err := exec.Command(goBin, "build", "-o", r.bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build ./services/omnibus: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		r.mu.Lock()
		cmd, done := r.cmd, r.done
		r.mu.Unlock()
		if cmd != nil {
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return r
}

// pickAddr returns a loopback address whose port is free now.
func pickAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// start runs the all-in-one; args are KEY=VALUE settings of its environment or its flags.
func (r *aioRig) start(args ...string) {
	r.t.Helper()
	set := map[string]string{
		"OMNIBUS_DATA_DIR": r.dir, "OMNIBUS_HTTP_ADDR": r.httpAddr, "OMNIBUS_NATS_ADDR": r.natsAddr,
		// The sandbox is the connectors' vendors; its customers and the demo's stay quiet: only
		// the test's traffic writes.
		"OMNIBUS_SIMULATE": "true", "OMNIBUS_SIM_INTERVAL": "1h", "SANDBOX_SCENARIO_INTERVAL": "0", "SANDBOX_TCCC_CALL_INTERVAL": "0",
		"EXAMPLE_SECRET": r.secret, "LOG_LEVEL": "info",
		"VOICE_SIP_LISTEN": "127.0.0.1:0", // the tests run side by side: no fixed SIP port
	}
	var flags []string
	for _, a := range args {
		if k, v, ok := strings.Cut(a, "="); ok && !strings.HasPrefix(a, "-") {
			set[k] = v
		} else {
			flags = append(flags, a)
		}
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "OMNIBUS_") || strings.HasPrefix(k, "SANDBOX_") || strings.HasPrefix(k, "UNIFIER_") ||
			k == "NATS_URL" || k == "DATABASE_URL" || k == "LOG_LEVEL" || k == "LOG_FORMAT" {
			continue
		}
		env = append(env, kv)
	}
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	cmd := exec.Command(r.bin, flags...)
	cmd.Env = env
	out := &bytes.Buffer{}
	w := &lockedWriter{mu: &r.mu, w: out}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	done := make(chan struct{})
	r.mu.Lock()
	r.cmd, r.out, r.done, r.err = cmd, out, done, nil
	r.mu.Unlock()
	go func() {
		err := cmd.Wait()
		r.mu.Lock()
		r.err = err
		r.mu.Unlock()
		close(done)
	}()
}

// lockedWriter writes to w under mu (the rig's, which also guards reading it).
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// output is what the current run printed.
func (r *aioRig) output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.out.String()
}

func (r *aioRig) running() (*exec.Cmd, chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cmd, r.done
}

// waitReady waits until /readyz answers 200; the run must not exit before.
func (r *aioRig) waitReady() {
	r.t.Helper()
	_, done := r.running()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if resp, err := client.Get("http://" + r.httpAddr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-done:
			r.t.Fatalf("the all-in-one exited before it was ready (%v):\n%s", r.err, r.output())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("the all-in-one is not ready after 3 minutes:\n%s", r.output())
		}
	}
}

// waitRefusal waits for the run to exit on its own with a failure whose message says what
// disagrees (want, among the rest) and the ways out.
func (r *aioRig) waitRefusal(want string) {
	r.t.Helper()
	_, done := r.running()
	select {
	case <-done:
	case <-time.After(3 * time.Minute):
		r.t.Fatalf("the all-in-one did not refuse to start:\n%s", r.output())
	}
	out := r.output()
	if i := strings.Index(out, "omnibus: refusing"); i >= 0 {
		r.t.Logf("refused, as it should:\n%s", out[i:])
	}
	var exit *exec.ExitError
	if !errors.As(r.err, &exit) || exit.ExitCode() != 1 {
		r.t.Fatalf("the all-in-one exited with %v, want exit status 1:\n%s", r.err, out)
	}
	for _, s := range []string{"omnibus: refusing to start: the log (NATS) and the database (Postgres) disagree", want,
		"NATS (" + filepath.Join(r.dir, "nats") + "): services that keep their state in the database have acked messages — unifier (",
		"start with --rebuild (or OMNIBUS_REBUILD=true), which rebuilds unifier", "nats consumer rm", "rm -rf " + r.dir + " (the whole data dir)"} {
		if !strings.Contains(out, s) {
			r.t.Errorf("the refusal lacks %q:\n%s", s, out)
		}
	}
	if strings.Contains(out, "omnibus is up") {
		r.t.Errorf("the services started although the log and the database disagree:\n%s", out)
	}
}

// kill kills the run with SIGKILL, as kill -9 does.
func (r *aioRig) kill() {
	r.t.Helper()
	cmd, done := r.running()
	if err := cmd.Process.Kill(); err != nil {
		r.t.Fatal(err)
	}
	<-done
}

// stop stops the run with SIGTERM, as Ctrl-C or a container stop does; it must exit 0.
func (r *aioRig) stop() {
	r.t.Helper()
	cmd, done := r.running()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		r.t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		r.t.Fatalf("the all-in-one did not stop on SIGTERM:\n%s", r.output())
	}
	if r.err != nil {
		r.t.Fatalf("the all-in-one stopped with %v:\n%s", r.err, r.output())
	}
}

// pgURL is the URL of database db on the run's embedded Postgres (its port is in postmaster.pid).
func (r *aioRig) pgURL(db string) string {
	r.t.Helper()
	b, err := os.ReadFile(filepath.Join(r.dir, "postgres", "postmaster.pid"))
	if err != nil {
		r.t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 4 {
		r.t.Fatalf("postmaster.pid: %q", b)
	}
	port, err := strconv.Atoi(strings.TrimSpace(lines[3]))
	if err != nil {
		r.t.Fatalf("postmaster.pid port: %v", err)
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", port, db)
}

func (r *aioRig) pool(url string) *pgxpool.Pool {
	r.t.Helper()
	p, err := pgxpool.New(context.Background(), url)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(p.Close)
	return p
}

// bus connects to the run's embedded NATS.
func (r *aioRig) bus() *bus.Client {
	r.t.Helper()
	nc, err := nats.Connect("nats://"+r.natsAddr, adminNkey(r.t, r.dir))
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(nc.Close)
	c, err := bus.Connect(nc, bus.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		r.t.Fatal(err)
	}
	return c
}

// keys are the personal-data keys the run generated in its data dir.
func (r *aioRig) keys() *pii.Keys {
	r.t.Helper()
	k, err := pii.LoadFile(filepath.Join(r.dir, "pii-keyset.json"), "")
	if err != nil {
		r.t.Fatal(err)
	}
	return k
}

// settle waits until the system has nothing left in flight: no durable consumer has pending or
// unacknowledged messages, the unifier's outbox is empty, and no stream grew since the previous
// look.
func (r *aioRig) settle() {
	r.t.Helper()
	js := r.bus().JetStream()
	db := r.pool(r.pgURL("postgres"))
	ctx := context.Background()
	var last, busy string
	bustest.WaitFor(r.t, 3*time.Minute, "the all-in-one settled", func() bool {
		var state []string
		busy = ""
		names := js.StreamNames(ctx)
		for name := range names.Name() {
			s, err := js.Stream(ctx, name)
			if err != nil {
				busy = err.Error()
				return false
			}
			info, err := s.Info(ctx)
			if err != nil {
				busy = err.Error()
				return false
			}
			state = append(state, fmt.Sprintf("%s:%d", name, info.State.LastSeq))
			cons := s.ListConsumers(ctx)
			for ci := range cons.Info() {
				if ci.NumPending > 0 || ci.NumAckPending > 0 {
					busy += fmt.Sprintf(" %s/%s pending %d, unacked %d;", name, ci.Name, ci.NumPending, ci.NumAckPending)
				}
			}
		}
		var outbox int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM outbox_batches`).Scan(&outbox); err != nil {
			busy += " outbox: " + err.Error()
		} else if outbox > 0 {
			busy += fmt.Sprintf(" outbox: %d batches;", outbox)
		}
		slices.Sort(state)
		now := strings.Join(state, " ")
		settled := busy == "" && now == last
		last = now
		if !settled {
			time.Sleep(200 * time.Millisecond)
		}
		return settled
	})
	if r.t.Failed() {
		r.t.Logf("still busy: %s", busy)
	}
}

// dump is the unifier's canonical dump of the store at url.
func (r *aioRig) dump(url string) string {
	r.t.Helper()
	d, err := unifier.Dump(context.Background(), r.pool(url))
	if err != nil {
		r.t.Fatal(err)
	}
	return d
}

// rebuildFromLog rebuilds the unifier's store from the run's log into a new database of its
// Postgres (the code path of omnibus replay --rebuild) and dumps it.
func (r *aioRig) rebuildFromLog() string {
	r.t.Helper()
	ctx := context.Background()
	if _, err := r.pool(r.pgURL("postgres")).Exec(ctx, "CREATE DATABASE rebuilt"); err != nil {
		r.t.Fatal(err)
	}
	url := r.pgURL("rebuilt")
	st, err := unifier.Rebuild(ctx, r.bus(), url, func(string) (string, bool) { return "", false }, r.keys(), slog.New(slog.DiscardHandler))
	if err != nil {
		r.t.Fatal(err)
	}
	if st.Failed != 0 || st.Undecodable != 0 {
		r.t.Errorf("rebuild: %d events rejected, %d undecodable", st.Failed, st.Undecodable)
	}
	return r.dump(url)
}

// checkHolds checks that the store at url holds every message the webhook acknowledged, and one
// customer per phone that wrote.
func (r *aioRig) checkHolds(url string, tr *aioTraffic) {
	r.t.Helper()
	ids, phones := tr.acceptedIDs()
	var stored, customers int
	db := r.pool(url)
	if err := db.QueryRow(context.Background(), `SELECT count(*) FROM messages WHERE event_id = ANY($1)`, ids).Scan(&stored); err != nil {
		r.t.Fatal(err)
	}
	if stored != len(ids) {
		r.t.Errorf("the store holds %d of the %d messages the webhook acknowledged", stored, len(ids))
	}
	if err := db.QueryRow(context.Background(), `SELECT count(*) FROM customers WHERE merged_into IS NULL`).Scan(&customers); err != nil {
		r.t.Fatal(err)
	}
	if customers != phones {
		r.t.Errorf("the store holds %d customers, want %d (one per phone that wrote)", customers, phones)
	}
}

// aioTraffic is a vendor posting signed webhooks to the example connector, one after the other,
// through restarts, keeping the ids it got 200 for.
type aioTraffic struct {
	r                   *aioRig
	quit, done          chan struct{}
	mu                  sync.Mutex
	accepted            []string
	phones              map[string]bool
	unavailable, failed atomic.Int64
}

const aioPhones = 25

func (r *aioRig) sendTraffic() *aioTraffic {
	tr := &aioTraffic{r: r, quit: make(chan struct{}), done: make(chan struct{}), phones: map[string]bool{}}
	go tr.run()
	r.t.Cleanup(tr.stop)
	return tr
}

func (tr *aioTraffic) run() {
	defer close(tr.done)
	client := &http.Client{Timeout: 5 * time.Second}
	for n := 1; ; n++ {
		select {
		case <-tr.quit:
			return
		default:
		}
		id := fmt.Sprintf("rt-%d", n)
		phone := fmt.Sprintf("+86139%08d", n%aioPhones)
		body, _ := json.Marshal(map[string]any{"id": id, "from": phone, "text": "restart traffic " + id, "sent_at": time.Now().UTC()})
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		req, _ := http.NewRequest(http.MethodPost, "http://"+tr.r.httpAddr+"/hooks/example/messages", bytes.NewReader(body))
		req.Header.Set("X-Example-Timestamp", ts)
		req.Header.Set("X-Example-Signature", example.Sign(tr.r.secret, ts, body))
		resp, err := client.Do(req)
		switch {
		case err != nil:
			tr.failed.Add(1)
		case resp.StatusCode == http.StatusOK:
			tr.mu.Lock()
			tr.accepted = append(tr.accepted, "example:"+id)
			tr.phones[phone] = true
			tr.mu.Unlock()
		case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "":
			tr.unavailable.Add(1)
		default:
			b, _ := io.ReadAll(resp.Body)
			tr.r.t.Errorf("webhook %s answered %d: %s", id, resp.StatusCode, b)
		}
		if resp != nil {
			resp.Body.Close()
		}
		if err != nil || resp.StatusCode != http.StatusOK {
			time.Sleep(20 * time.Millisecond) // the process is down or starting
		} else {
			time.Sleep(2 * time.Millisecond)
		}
	}
}

func (tr *aioTraffic) count() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return len(tr.accepted)
}

// waitMore waits until n more webhooks were acknowledged.
func (tr *aioTraffic) waitMore(n int) {
	tr.r.t.Helper()
	want := tr.count() + n
	bustest.WaitFor(tr.r.t, 2*time.Minute, fmt.Sprintf("%d more webhooks acknowledged", n), func() bool { return tr.count() >= want })
}

func (tr *aioTraffic) stop() {
	select {
	case <-tr.quit:
	default:
		close(tr.quit)
	}
	<-tr.done
}

func (tr *aioTraffic) acceptedIDs() ([]string, int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Clone(tr.accepted), len(tr.phones)
}
