package service

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/httpguard"
)

// TestStandaloneCutsSlowLoris: a standalone service's server (Main's harness) closes a
// connection whose client sends its request headers a byte at a time past
// HTTP_READ_HEADER_TIMEOUT.
func TestStandaloneCutsSlowLoris(t *testing.T) {
	t.Parallel()
	s := Service{Name: "example", NoBus: true, Run: func(ctx context.Context, d Deps) error {
		d.MarkStarted()
		<-ctx.Done()
		return nil
	}}
	h := addrHandler{Handler: slog.DiscardHandler, addr: make(chan string, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runStandalone(ctx, s, Base{HTTPAddr: "127.0.0.1:0", ShutdownTimeout: 5 * time.Second,
			Guard: httpguard.Config{ReadHeaderTimeout: 300 * time.Millisecond}}, slog.New(h))
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("service stopped with %v", err)
		}
	}()
	var base string
	select {
	case base = <-h.addr:
	case err := <-done:
		t.Fatalf("service exited: %v", err)
	}
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	head := "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 300) + "\r\n\r\n"
	for i := 0; i < len(head); i++ {
		if _, err := conn.Write([]byte{head[i]}); err != nil {
			return // cut off
		}
		time.Sleep(50 * time.Millisecond)
		_ = conn.SetReadDeadline(time.Now().Add(time.Millisecond))
		if _, err := conn.Read(make([]byte, 1)); err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				return // the server closed the connection
			}
		}
	}
	t.Fatal("the server read a request sent a byte every 50ms for 15s instead of closing the connection")
}
