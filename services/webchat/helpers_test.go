package webchat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/httpguard"
	"github.com/omnibus-dev/omnibus/pkg/schema"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/services/webchat"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	secret      = "test-secret-0123456789abcdef"
	inFilter    = webchat.SubjectIn + ".>"
	stateFilter = webchat.SubjectState + ".>"
	wait        = 30 * time.Second // a bound, not a timing assertion: go test work runs many packages at once on 2 cores
)

func logger() *slog.Logger {
	if os.Getenv("WEBCHAT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func baseEnv() map[string]string {
	return map[string]string{"WEBCHAT_SECRET": secret, "WEBCHAT_TITLE": "测试客服"}
}

// instance is one running connector process: its own NATS connection, mux and HTTP server.
type instance struct {
	URL    string
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

func startInstance(t *testing.T, b *bustest.Bundle, env map[string]string) *instance {
	t.Helper()
	return startGuarded(t, b, env, nil)
}

// startGuarded is startInstance with the process's abuse limits g (client addresses behind its
// trusted proxies).
func startGuarded(t *testing.T, b *bustest.Bundle, env map[string]string, g *httpguard.Guard) *instance {
	t.Helper()
	client := b.Connect(t, bus.WithLogger(logger()))
	mux := http.NewServeMux()
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{cancel: cancel, done: make(chan error, 1)}
	go func() {
		in.done <- webchat.Service().Run(ctx, service.Deps{Bus: client, Mux: mux, Log: logger(), Health: service.NewHealth(), Guard: g,
			Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	}()
	srv := newServer(t, mux)
	if g != nil {
		srv = serveGuarded(t, mux, g)
	}
	in.URL = srv
	t.Cleanup(func() {
		if err := in.stop(t); err != nil {
			t.Errorf("Run returned %v after cancellation", err)
		}
	})
	deadline := time.Now().Add(wait)
	for {
		resp, err := http.Get(in.URL + "/webchat/widget.js")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return in
			}
		}
		select {
		case err := <-in.done:
			t.Fatalf("connector exited during setup: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("connector routes never mounted")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop cancels the instance and waits for Run (sockets closed, consumers drained).
func (in *instance) stop(t *testing.T) error {
	t.Helper()
	in.once.Do(func() {
		in.cancel()
		select {
		case in.err = <-in.done:
		case <-time.After(30 * time.Second):
			t.Fatal("connector did not stop within 30s")
		}
	})
	return in.err
}

func serviceDeps(b *bustest.Bundle, env map[string]string) service.Deps {
	return service.Deps{Bus: b.Client, Mux: http.NewServeMux(), Log: logger(), Health: service.NewHealth(),
		Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
}

// serveGuarded serves h as a process does: through httpguard.Server, with g's timeouts and caps.
func serveGuarded(t *testing.T, h http.Handler, g *httpguard.Guard) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httpguard.Server(context.Background(), h, g.Config(), g.Counter())
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

func newServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func (in *instance) wsURL() string { return "ws" + strings.TrimPrefix(in.URL, "http") + "/webchat/ws" }

// wsClient is a widget stand-in: a real WebSocket client reading frames on a goroutine.
type wsClient struct {
	conn   *websocket.Conn
	frames chan webchat.ServerFrame
	closed chan struct{}
	err    error // the read error that ended the socket, once closed is closed
	// backlog holds frames read past by message (e.g. a log entry that arrived before an ack);
	// next returns them first.
	backlog []webchat.ServerFrame
}

func dialRaw(t *testing.T, url, origin string) (*wsClient, error) {
	t.Helper()
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	return dialHeader(t, url, h)
}

// dialHeader connects with the request headers h.
func dialHeader(t *testing.T, url string, h http.Header) (*wsClient, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h})
	if resp != nil && resp.Body != nil { // set on a refused handshake only
		defer resp.Body.Close()
	}
	if err != nil {
		if resp != nil && resp.Body != nil {
			body, _ := io.ReadAll(resp.Body)
			return nil, fmt.Errorf("%w: %d %s", err, resp.StatusCode, body)
		}
		return nil, err
	}
	conn.SetReadLimit(1 << 20)
	c := &wsClient{conn: conn, frames: make(chan webchat.ServerFrame, 256), closed: make(chan struct{})}
	go func() {
		defer close(c.closed)
		for {
			_, b, err := conn.Read(context.Background())
			if err != nil {
				c.err = err
				return
			}
			var f webchat.ServerFrame
			if err := json.Unmarshal(b, &f); err != nil {
				c.err = fmt.Errorf("server sent a non-JSON frame %q: %w", b, err)
				return
			}
			c.frames <- f
		}
	}()
	t.Cleanup(func() {
		_ = conn.CloseNow()
		<-c.closed
	})
	return c, nil
}

// dial connects, says hello and returns the client and the welcome frame.
func dial(t *testing.T, in *instance, hello webchat.ClientFrame) (*wsClient, webchat.ServerFrame) {
	t.Helper()
	c, err := dialRaw(t, in.wsURL(), "")
	if err != nil {
		t.Fatal(err)
	}
	hello.Type = webchat.FrameHello
	c.send(t, hello)
	w := c.next(t)
	if w.Type != webchat.FrameWelcome {
		t.Fatalf("first frame %+v, want welcome", w)
	}
	return c, w
}

func (c *wsClient) send(t *testing.T, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	c.sendRaw(t, b)
}

func (c *wsClient) sendRaw(t *testing.T, b []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func (c *wsClient) next(t *testing.T) webchat.ServerFrame {
	t.Helper()
	if len(c.backlog) > 0 {
		f := c.backlog[0]
		c.backlog = c.backlog[1:]
		return f
	}
	select {
	case f := <-c.frames:
		return f
	case <-c.closed:
		// Frames read before the close are still buffered.
		select {
		case f := <-c.frames:
			return f
		default:
		}
		t.Fatalf("socket closed while a frame was expected: %v", c.err)
	case <-time.After(wait):
		t.Fatal("no frame within the wait")
	}
	return webchat.ServerFrame{}
}

// until reads frames until one satisfies stop and returns all of them, the last included.
func (c *wsClient) until(t *testing.T, stop func(webchat.ServerFrame) bool) []webchat.ServerFrame {
	t.Helper()
	var out []webchat.ServerFrame
	for {
		f := c.next(t)
		out = append(out, f)
		if stop(f) {
			return out
		}
	}
}

// closeErr waits for the server to close the socket and returns the read error.
func (c *wsClient) closeErr(t *testing.T) error {
	t.Helper()
	for {
		select {
		case <-c.frames:
		case <-c.closed:
			return c.err
		case <-time.After(wait):
			t.Fatal("the server did not close the socket")
			return nil
		}
	}
}

// message sends a message frame and returns its ack (or error frame); echoes are skipped.
func (c *wsClient) message(t *testing.T, cid, text string, extra ...func(*webchat.ClientFrame)) webchat.ServerFrame {
	t.Helper()
	f := webchat.ClientFrame{Type: webchat.FrameMessage, CID: cid, Text: text}
	for _, x := range extra {
		x(&f)
	}
	c.send(t, f)
	var skipped []webchat.ServerFrame
	for {
		f := c.next(t)
		if (f.Type == webchat.FrameAck || f.Type == webchat.FrameError) && f.CID == cid {
			c.backlog = append(skipped, c.backlog...)
			return f
		}
		skipped = append(skipped, f)
	}
}

func withPhone(p string) func(*webchat.ClientFrame) {
	return func(f *webchat.ClientFrame) { f.Phone = p }
}

// reply publishes an agent's send command to visitor, as the desk would.
func reply(t *testing.T, b *bustest.Bundle, visitor, text string) event.Event {
	t.Helper()
	return command(t, b, map[string]any{
		"channel": "webchat", "to": map[string]string{"kind": "web_visitor", "value": visitor},
		"message":         map[string]any{"type": "text", "text": text},
		"conversation_id": "0193a4c2-7d7e-7a1b-9c3d-2e4f5a6b7c8d",
	})
}

func command(t *testing.T, b *bustest.Bundle, data map[string]any) event.Event {
	t.Helper()
	to := data["to"].(map[string]string)
	e, err := event.New(webchat.TypeSend, "/desk", data, event.WithPartitionKey(to["kind"]+":"+to["value"]))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := b.Client.Publish(ctx, webchat.SubjectOut, e); err != nil {
		t.Fatal(err)
	}
	return e
}

// statuses returns the stored status events by id.
func statuses(t *testing.T, b *bustest.Bundle) map[string]event.Event {
	t.Helper()
	out := map[string]event.Event{}
	for _, e := range b.Events(t, bus.StreamIn, stateFilter) {
		out[e.ID()] = e
	}
	return out
}

func waitStatus(t *testing.T, b *bustest.Bundle, id string) event.Event {
	t.Helper()
	bustest.WaitFor(t, wait, "status "+id, func() bool { _, ok := statuses(t, b)[id]; return ok })
	return statuses(t, b)[id]
}

func data(t *testing.T, e event.Event) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(e.Data(), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func mustValid(t *testing.T, e event.Event) {
	t.Helper()
	if err := schema.Default().Validate(e.Type(), e.Data()); err != nil {
		t.Fatalf("event %s is not schema-valid: %v", e.ID(), err)
	}
}

func text(f webchat.ServerFrame) string {
	var m struct{ Text string }
	_ = json.Unmarshal(f.Message, &m)
	return m.Text
}
