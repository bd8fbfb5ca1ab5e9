package httpguard_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/omnibus-dev/omnibus/pkg/config"
	"github.com/omnibus-dev/omnibus/pkg/httpguard"
)

func TestParseRate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in      string
		burst   int
		perSec  float64
		off     bool
		wantErr bool
	}{
		{"30/m", 10, 0.5, false, false},
		{"100/s", 1, 100, false, false},
		{"3600/h", 5, 1, false, false},
		{"off", 0, 0, true, false},
		{"0", 0, 0, true, false},
		{"30", 10, 0, false, true},
		{"30/d", 10, 0, false, true},
		{"-1/s", 10, 0, false, true},
		{"5/s", 0, 0, false, true},
	} {
		r, err := httpguard.ParseRate(tc.in, tc.burst)
		if tc.wantErr {
			if !errors.Is(err, httpguard.ErrInvalidRate) {
				t.Errorf("%q burst %d: err %v, want ErrInvalidRate", tc.in, tc.burst, err)
			}
			continue
		}
		if err != nil || r.Off() != tc.off || float64(r.Every) != tc.perSec {
			t.Errorf("%q: %+v %v", tc.in, r, err)
		}
	}
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestLimiter(t *testing.T) {
	t.Parallel()
	t.Run("burst then rate, keys apart", func(t *testing.T) {
		t.Parallel()
		c := &clock{t: time.Unix(1_700_000_000, 0)}
		l := httpguard.NewLimiter("test", httpguard.MustRate("60/m", 3), httpguard.WithClock(c.now))
		for i := range 3 {
			if ok, _ := l.Allow("a"); !ok {
				t.Fatalf("request %d within the burst refused", i)
			}
		}
		ok, retry := l.Allow("a")
		if ok || retry <= 0 || retry > time.Second {
			t.Fatalf("past the burst: ok=%v retry=%s, want refused with retry <= 1s", ok, retry)
		}
		if ok, _ := l.Allow("b"); !ok {
			t.Fatal("another key was refused")
		}
		c.t = c.t.Add(time.Second)
		if ok, _ := l.Allow("a"); !ok {
			t.Fatal("a token a second later was refused")
		}
	})
	t.Run("memory bounded", func(t *testing.T) {
		t.Parallel()
		c := &clock{t: time.Unix(1_700_000_000, 0)}
		l := httpguard.NewLimiter("test", httpguard.MustRate("1/s", 5), httpguard.WithClock(c.now), httpguard.WithMaxKeys(1000))
		for i := range 10_000 {
			l.Allow(fmt.Sprintf("10.0.%d.%d", i/256, i%256))
			c.t = c.t.Add(time.Millisecond)
		}
		if n := l.Keys(); n > 1000 {
			t.Fatalf("%d buckets kept, bound 1000", n)
		}
		// Idle keys go once they would be full again.
		c.t = c.t.Add(10 * time.Minute)
		l.Allow("late")
		if n := l.Keys(); n != 1 {
			t.Fatalf("%d buckets after every other key idled out, want 1", n)
		}
	})
	t.Run("off and nil allow everything", func(t *testing.T) {
		t.Parallel()
		var nl *httpguard.Limiter
		off := httpguard.NewLimiter("test", httpguard.Rate{})
		for range 1000 {
			if ok, _ := nl.Allow("k"); !ok {
				t.Fatal("nil limiter refused")
			}
			if ok, _ := off.Allow("k"); !ok {
				t.Fatal("off limiter refused")
			}
		}
	})
}

func req(remote string, xff ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = remote
	for _, h := range xff {
		r.Header.Add("X-Forwarded-For", h)
	}
	return r
}

func TestClientAddr(t *testing.T) {
	t.Parallel()
	p, err := httpguard.ParseProxies([]string{"10.0.0.0/8", "192.0.2.7"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		r    *http.Request
		want string
	}{
		{"direct client, header ignored", req("203.0.113.9:5555", "198.51.100.1"), "203.0.113.9"},
		{"through the proxy", req("10.1.2.3:443", "198.51.100.1"), "198.51.100.1"},
		{"client forges a left entry", req("10.1.2.3:443", "1.2.3.4, 198.51.100.1"), "198.51.100.1"},
		{"two trusted hops", req("192.0.2.7:80", "198.51.100.1, 10.9.9.9"), "198.51.100.1"},
		{"two headers", req("10.1.2.3:443", "1.2.3.4", "198.51.100.1"), "198.51.100.1"},
		{"all trusted", req("10.1.2.3:443", "10.0.0.5, 10.0.0.6"), "10.0.0.5"},
		{"proxy without header", req("10.1.2.3:443"), "10.1.2.3"},
		{"garbled header", req("10.1.2.3:443", "not-an-ip"), "10.1.2.3"},
		{"v6 peer", req("[2001:db8::1]:443"), "2001:db8::1"},
		{"v4-mapped v6 proxy", req("[::ffff:10.1.2.3]:443", "198.51.100.1"), "198.51.100.1"},
	} {
		if got := p.ClientAddr(tc.r); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	for in, want := range map[string]string{"203.0.113.9": "203.0.113.9", "2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64", "2001:db8:1:2::ff": "2001:db8:1:2::/64"} {
		if got := httpguard.AddrKey(in); got != want {
			t.Errorf("AddrKey(%s) = %s, want %s", in, got, want)
		}
	}
	var none httpguard.Proxies
	if got := none.ClientAddr(req("10.1.2.3:443", "198.51.100.1")); got != "10.1.2.3" {
		t.Errorf("no trusted proxies: %q, want the peer", got)
	}
	if _, err := httpguard.ParseProxies([]string{"10.0.0.0/33"}); err == nil {
		t.Error("a bad CIDR was accepted")
	}
}

// guard returns a Guard configured by env (defaults otherwise) counting on its own registry.
func guard(t *testing.T, env map[string]string) (*httpguard.Guard, httpguard.Config, *prometheus.Registry) {
	t.Helper()
	var cfg httpguard.Config
	if err := config.Load(&cfg, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	g, err := httpguard.New(cfg, mp)
	if err != nil {
		t.Fatal(err)
	}
	return g, cfg, reg
}

func rejected(t *testing.T, reg *prometheus.Registry, entry, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "omnibus_http_rejected_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["entry"] == entry && labels["reason"] == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestGuardRefuses429(t *testing.T) {
	t.Parallel()
	g, _, reg := guard(t, map[string]string{"RATE_WEBHOOK": "1/m", "RATE_WEBHOOK_BURST": "2", "HTTP_TRUSTED_PROXIES": "127.0.0.1"})
	l := g.Webhook("sms")
	h := l.Guard(g.ClientKey, "too many webhook requests", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	send := func(from string) int {
		r, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader("{}"))
		r.Header.Set("X-Forwarded-For", from)
		resp, err := srv.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range 2 {
		if code := send("198.51.100.1"); code != http.StatusNoContent {
			t.Fatalf("request %d: %d", i, code)
		}
	}
	r, _ := http.NewRequest(http.MethodPost, srv.URL, nil)
	r.Header.Set("X-Forwarded-For", "198.51.100.1")
	resp, err := srv.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ Error, Reason string }
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || body.Reason != "too many webhook requests" {
		t.Fatalf("past the limit: %s Retry-After=%q %+v", resp.Status, resp.Header.Get("Retry-After"), body)
	}
	if code := send("198.51.100.2"); code != http.StatusNoContent {
		t.Fatalf("another client behind the proxy: %d", code)
	}
	if n := rejected(t, reg, "webhook/sms", httpguard.ReasonRateLimited); n != 1 {
		t.Fatalf("omnibus_http_rejected_total{entry=webhook/sms,reason=rate_limited} = %v, want 1", n)
	}
}

func serve(t *testing.T, cfg httpguard.Config, c *httpguard.Counter, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httpguard.Server(context.Background(), h, cfg, c)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// TestSlowLoris: a client that sends its headers a byte at a time is cut off by
// HTTP_READ_HEADER_TIMEOUT; the cut is counted.
func TestSlowLoris(t *testing.T) {
	t.Parallel()
	g, cfg, reg := guard(t, map[string]string{"HTTP_READ_HEADER_TIMEOUT": "300ms"})
	addr := serve(t, cfg, g.Counter(), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	head := "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 200) + "\r\n\r\n"
	closed := false
	for i := 0; i < len(head); i++ {
		if _, err := conn.Write([]byte{head[i]}); err != nil {
			closed = true
			break
		}
		time.Sleep(50 * time.Millisecond)
		// The server closes the connection; a read sees EOF (or a reset).
		_ = conn.SetReadDeadline(time.Now().Add(time.Millisecond))
		if _, err := conn.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
			closed = true
			break
		}
	}
	if !closed {
		t.Fatal("the server read the whole slowly sent request instead of closing the connection")
	}
	// The counter is updated when the server's side of the connection closes.
	deadline := time.Now().Add(5 * time.Second)
	for rejected(t, reg, "server", httpguard.ReasonTimeout) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the cut-off connection was not counted on omnibus_http_rejected_total{entry=server,reason=timeout}")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestSlowBody: a client that sends its body slowly is cut off by HTTP_READ_TIMEOUT.
func TestSlowBody(t *testing.T) {
	t.Parallel()
	g, cfg, _ := guard(t, map[string]string{"HTTP_READ_TIMEOUT": "300ms"})
	readErr := make(chan error, 1)
	addr := serve(t, cfg, g.Counter(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		readErr <- err
	}))
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1000; i++ {
		if _, err := conn.Write([]byte{'a'}); err != nil {
			break
		}
		select {
		case err := <-readErr:
			if err == nil {
				t.Fatal("the handler read the whole slow body")
			}
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatal("the slow body was never cut off")
}

// TestStreamsExempt: an event stream outlives HTTP_READ_TIMEOUT and HTTP_WRITE_TIMEOUT.
func TestStreamsExempt(t *testing.T) {
	t.Parallel()
	g, cfg, _ := guard(t, map[string]string{"HTTP_READ_TIMEOUT": "200ms", "HTTP_WRITE_TIMEOUT": "200ms"})
	addr := serve(t, cfg, g.Counter(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 8 {
			if _, err := fmt.Fprintf(w, "data: %d\n\n", i); err != nil {
				return
			}
			_ = http.NewResponseController(w).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}))
	r, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	r.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	n := 0
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: ") {
			n++
		}
	}
	if n != 8 {
		t.Fatalf("the stream delivered %d of 8 events before the server's timeouts cut it", n)
	}
}

// TestBodyCap: a body over HTTP_MAX_BODY is answered 413 with the cap in the reason.
func TestBodyCap(t *testing.T) {
	t.Parallel()
	g, cfg, _ := guard(t, map[string]string{"HTTP_MAX_BODY": "1024"})
	addr := serve(t, cfg, g.Counter(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			httpguard.TooLarge(w, 1024)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	for _, tc := range []struct {
		name    string
		chunked bool
	}{{"declared length", false}, {"chunked", true}} {
		var body io.Reader = strings.NewReader(strings.Repeat("x", 4096))
		if tc.chunked {
			body = io.MultiReader(body) // no length: sent chunked
		}
		resp, err := http.Post("http://"+addr+"/", "text/plain", body)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), "larger than 1024 bytes") {
			t.Errorf("%s: %s %s", tc.name, resp.Status, b)
		}
	}
	resp, err := http.Post("http://"+addr+"/", "text/plain", strings.NewReader("small"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("a small body: %s", resp.Status)
	}
}

// BenchmarkAllow: the cost of a limit check on the request path, for a handful of hot keys and
// for a flood of distinct ones (bounded map, sweeps included).
func BenchmarkAllow(b *testing.B) {
	for _, keys := range []int{16, 1 << 20} {
		b.Run(fmt.Sprintf("keys=%d", keys), func(b *testing.B) {
			l := httpguard.NewLimiter("bench", httpguard.MustRate("1000/s", 1000), httpguard.WithMaxKeys(100_000))
			names := make([]string, min(keys, 1<<16))
			for i := range names {
				names[i] = fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				k := names[i%len(names)]
				if keys > len(names) {
					k = strconv.Itoa(i)
				}
				l.Allow(k)
			}
		})
	}
}
