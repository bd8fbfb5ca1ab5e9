package faultload

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// AllInOne runs the omnibus binary as a subprocess, as an operator would, and can kill it -9
// and start it again on the same environment (data directory, ports, DATABASE_URL).
type AllInOne struct {
	// Bin is the omnibus binary.
	Bin string
	// Env is the subprocess's whole environment.
	Env []string
	// HTTPAddr is its OMNIBUS_HTTP_ADDR, polled for /readyz.
	HTTPAddr string
	// LogDir receives omnibus-<run>.log, the output of each run.
	LogDir string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the current run exited
	err  error         // its exit status; read after done
	logs []string
}

// Start starts a run. It fails if one is running.
func (a *AllInOne) Start() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cmd != nil {
		select {
		case <-a.done:
		default:
			return errors.New("faultload: the all-in-one is running")
		}
	}
	path := filepath.Join(a.LogDir, fmt.Sprintf("omnibus-%d.log", len(a.logs)+1))
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	cmd := exec.Command(a.Bin)
	cmd.Env = a.Env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("faultload: starting %s: %w", a.Bin, err)
	}
	a.cmd, a.done, a.logs = cmd, make(chan struct{}), append(a.logs, path)
	done := a.done
	go func() {
		err := cmd.Wait()
		f.Close()
		a.mu.Lock()
		a.err = err
		a.mu.Unlock()
		close(done)
	}()
	return nil
}

// running returns the current run's done channel, nil when none was started.
func (a *AllInOne) running() chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.done
}

// exitErr describes how the current run ended; call it after done is closed.
func (a *AllInOne) exitErr() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err == nil {
		return errors.New("exit status 0")
	}
	return a.err
}

// WaitReady polls /readyz until it answers 200, the run exits, or ctx ends.
func (a *AllInOne) WaitReady(ctx context.Context) error {
	done := a.running()
	if done == nil {
		return errors.New("faultload: the all-in-one was not started")
	}
	client := &http.Client{Timeout: 2 * time.Second}
	last := "no answer"
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.HTTPAddr+"/readyz", nil)
		if resp, err := client.Do(req); err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, bytes.TrimSpace(b))
		}
		select {
		case <-done:
			return fmt.Errorf("faultload: the all-in-one exited before it was ready (%w); see %s", a.exitErr(), a.LastLog())
		case <-ctx.Done():
			return fmt.Errorf("faultload: the all-in-one is not ready (last /readyz: %s): %w", last, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Kill kills the run with SIGKILL (kill -9) and waits for it to be gone.
func (a *AllInOne) Kill() error {
	a.mu.Lock()
	cmd, done := a.cmd, a.done
	a.mu.Unlock()
	if cmd == nil {
		return errors.New("faultload: the all-in-one was not started")
	}
	if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("faultload: kill -9: %w", err)
	}
	<-done
	return nil
}

// Stop asks the run to shut down (SIGTERM, as Ctrl-C or a container stop) and waits for it, or
// kills it when ctx ends first. It returns the exit status unless that is 0.
func (a *AllInOne) Stop(ctx context.Context) error {
	a.mu.Lock()
	cmd, done := a.cmd, a.done
	a.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
		return fmt.Errorf("faultload: the all-in-one had exited already: %w", a.exitErr())
	default:
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-done:
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.err != nil {
			return fmt.Errorf("faultload: the all-in-one stopped with %w", a.err)
		}
		return nil
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("faultload: the all-in-one did not stop on SIGTERM; killed: %w", ctx.Err())
	}
}

// Logs returns the log file of every run so far, oldest first.
func (a *AllInOne) Logs() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.logs...)
}

// LastLog returns the current run's log file.
func (a *AllInOne) LastLog() string {
	logs := a.Logs()
	if len(logs) == 0 {
		return ""
	}
	return logs[len(logs)-1]
}

// Grep returns the lines of every run's log that contain substr, at most limit of them (0: no
// limit), and how many there are.
func (a *AllInOne) Grep(substr string, limit int) ([]string, int) {
	var out []string
	n := 0
	for _, path := range a.Logs() {
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		for sc.Scan() {
			if line := sc.Text(); strings.Contains(line, substr) {
				n++
				if limit == 0 || len(out) < limit {
					out = append(out, filepath.Base(path)+": "+line)
				}
			}
		}
		f.Close()
	}
	return out, n
}

// Tail returns the last n lines of the current run's log.
func (a *AllInOne) Tail(n int) string {
	b, err := os.ReadFile(a.LastLog())
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
