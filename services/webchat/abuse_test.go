package webchat_test

import (
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/config"
	"github.com/omnibus-dev/omnibus/pkg/httpguard"
	"github.com/omnibus-dev/omnibus/services/webchat"
)

// guardWith is a Guard configured by env.
func guardWith(t *testing.T, env map[string]string) *httpguard.Guard {
	t.Helper()
	var cfg httpguard.Config
	if err := config.Load(&cfg, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	g, err := httpguard.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestSocketsOutliveServerTimeouts: a chat socket served with short HTTP_READ_TIMEOUT and
// HTTP_WRITE_TIMEOUT keeps working past them (the server exempts WebSockets), while a client
// that never finishes its headers is cut off.
func TestSocketsOutliveServerTimeouts(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(logger()))
	g := guardWith(t, map[string]string{"HTTP_READ_HEADER_TIMEOUT": "300ms", "HTTP_READ_TIMEOUT": "300ms", "HTTP_WRITE_TIMEOUT": "300ms"})
	in := startGuarded(t, b, baseEnv(), g)
	c, _ := dial(t, in, webchat.ClientFrame{})
	time.Sleep(time.Second) // past every server timeout
	if f := c.message(t, "late", "still here?"); f.Type != webchat.FrameAck {
		t.Fatalf("a message a second after the handshake: %+v", f)
	}
	select {
	case <-c.closed:
		t.Fatalf("the socket was closed: %v", c.err)
	default:
	}
	conn, err := net.Dial("tcp", strings.TrimPrefix(in.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET /webchat/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	if _, err := conn.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("a handshake whose headers never end: read %v, want the server to close the connection", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// behindProxy is a Guard that trusts the test's loopback as a proxy, so that X-Forwarded-For
// names the client address of each request.
func behindProxy(t *testing.T) *httpguard.Guard {
	t.Helper()
	var cfg httpguard.Config
	if err := config.Load(&cfg, func(k string) (string, bool) {
		return map[string]string{"HTTP_TRUSTED_PROXIES": "127.0.0.0/8,::1"}[k], k == "HTTP_TRUSTED_PROXIES"
	}); err != nil {
		t.Fatal(err)
	}
	g, err := httpguard.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// dialAs connects as the client at addr, says hello and returns the client and the first frame.
func dialAs(t *testing.T, in *instance, addr string, hello webchat.ClientFrame) (*wsClient, webchat.ServerFrame, error) {
	t.Helper()
	c, err := dialHeader(t, in.wsURL(), http.Header{"X-Forwarded-For": {addr}})
	if err != nil {
		return nil, webchat.ServerFrame{}, err
	}
	hello.Type = webchat.FrameHello
	c.send(t, hello)
	select {
	case f := <-c.frames:
		return c, f, nil
	case <-c.closed:
		return c, webchat.ServerFrame{}, c.err
	}
}

// TestNewVisitorsLimitedPerAddress: one client address creating visitors past
// WEBCHAT_NEW_VISITOR_BURST is refused (close 4429), while another address still gets new
// visitors and the refused address's existing visitors still reconnect.
func TestNewVisitorsLimitedPerAddress(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(logger()))
	env := baseEnv()
	env["WEBCHAT_NEW_VISITOR_RATE"], env["WEBCHAT_NEW_VISITOR_BURST"] = "1/h", "3"
	in := startGuarded(t, b, env, behindProxy(t))
	var first webchat.ServerFrame
	for i := range 3 {
		_, w, err := dialAs(t, in, "198.51.100.7", webchat.ClientFrame{})
		if err != nil || w.Type != webchat.FrameWelcome || w.Visitor == "" {
			t.Fatalf("new visitor %d within the burst: %+v %v", i, w, err)
		}
		if i == 0 {
			first = w
		}
	}
	_, w, err := dialAs(t, in, "198.51.100.7", webchat.ClientFrame{})
	if websocket.CloseStatus(err) != webchat.CloseTooMany || w.Visitor != "" {
		t.Fatalf("a 4th new visitor from one address: frame %+v, close %v; want closed with %d", w, err, webchat.CloseTooMany)
	}
	if _, w, err := dialAs(t, in, "198.51.100.8", webchat.ClientFrame{}); err != nil || w.Type != webchat.FrameWelcome {
		t.Fatalf("a new visitor from another address: %+v %v", w, err)
	}
	if _, w, err := dialAs(t, in, "198.51.100.7", webchat.ClientFrame{Visitor: first.Visitor, Token: first.Token}); err != nil ||
		w.Type != webchat.FrameWelcome || w.Visitor != first.Visitor {
		t.Fatalf("an existing visitor of the limited address reconnecting: %+v %v", w, err)
	}
}

// TestMessagesLimitedPerAddress: the visitors of one address share WEBCHAT_ADDRESS_BURST however
// many there are; another address is not affected.
func TestMessagesLimitedPerAddress(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(logger()))
	env := baseEnv()
	env["WEBCHAT_ADDRESS_RATE"], env["WEBCHAT_ADDRESS_BURST"] = "1/h", "4"
	in := startGuarded(t, b, env, behindProxy(t))
	acks, limited := 0, 0
	for v := range 3 {
		c, w, err := dialAs(t, in, "203.0.113.5", webchat.ClientFrame{})
		if err != nil || w.Type != webchat.FrameWelcome {
			t.Fatalf("visitor %d: %+v %v", v, w, err)
		}
		for m := range 2 {
			f := c.message(t, "m"+strconv.Itoa(v*2+m), "hi")
			switch {
			case f.Type == webchat.FrameAck:
				acks++
			case f.Type == webchat.FrameError && f.Code == webchat.CodeRateLimited && f.RetryAfterMS > 0 && !strings.Contains(f.Reason, "json"):
				limited++
			default:
				t.Fatalf("message: %+v", f)
			}
		}
	}
	if acks != 4 || limited != 2 {
		t.Fatalf("3 visitors of one address sent 6 messages with an address burst of 4: %d stored, %d limited", acks, limited)
	}
	c, _, err := dialAs(t, in, "203.0.113.6", webchat.ClientFrame{})
	if err != nil {
		t.Fatal(err)
	}
	if f := c.message(t, "other", "hi"); f.Type != webchat.FrameAck {
		t.Fatalf("another address: %+v", f)
	}
	if n := b.StoredCount(t, bus.StreamIn, inFilter); n != 5 {
		t.Fatalf("%d events stored, want 5", n)
	}
}

// TestHandshakesLimitedPerAddress: handshakes past WEBCHAT_CONNECT_BURST from one address are
// answered 429 with Retry-After before the upgrade.
func TestHandshakesLimitedPerAddress(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(logger()))
	env := baseEnv()
	env["WEBCHAT_CONNECT_RATE"], env["WEBCHAT_CONNECT_BURST"] = "1/h", "2"
	in := startGuarded(t, b, env, behindProxy(t))
	for i := range 2 {
		if _, err := dialHeader(t, in.wsURL(), http.Header{"X-Forwarded-For": {"192.0.2.44"}}); err != nil {
			t.Fatalf("handshake %d: %v", i, err)
		}
	}
	_, err := dialHeader(t, in.wsURL(), http.Header{"X-Forwarded-For": {"192.0.2.44"}})
	if err == nil || !strings.Contains(err.Error(), "429") {
		t.Fatalf("3rd handshake: %v, want 429", err)
	}
	if _, err := dialHeader(t, in.wsURL(), http.Header{"X-Forwarded-For": {"192.0.2.45"}}); err != nil {
		t.Fatalf("another address: %v", err)
	}
}
