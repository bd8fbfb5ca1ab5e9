package httpguard

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Server returns an http.Server for h with cfg's slow-loris timeouts and body cap:
//
//   - ReadHeaderTimeout, ReadTimeout and IdleTimeout close a connection whose client is too
//     slow to send its request (one header byte at a time) or idles;
//   - WriteTimeout bounds writing a response;
//   - every request body is capped at MaxBody (a handler reading past it gets an error, and
//     the connection is closed after the answer).
//
// Long-lived responses are exempt once they start: a GET that upgrades to a WebSocket or asks
// for an event stream (Accept: text/event-stream) has its deadlines cleared, and a handler
// streaming a large download calls Stream. Connections closed before they sent a whole request
// after at least ReadHeaderTimeout are counted as omnibus_http_rejected_total{entry="server",
// reason="timeout"} on counter (with ctx, the process's context).
func Server(ctx context.Context, h http.Handler, cfg Config, counter *Counter) *http.Server {
	srv := &http.Server{
		Handler:           exempt(capBody(h, cfg.MaxBody)),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
	}
	if cfg.ReadHeaderTimeout > 0 && counter != nil {
		// A connection counts as cut off when it closes without any request having reached a
		// handler, after at least ReadHeaderTimeout (a scanner's connect-and-close does not).
		var mu sync.Mutex
		waiting := map[net.Conn]time.Time{}
		served := func(c net.Conn) {
			mu.Lock()
			delete(waiting, c)
			mu.Unlock()
		}
		srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		}
		inner := srv.Handler
		srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if c, ok := r.Context().Value(connKey{}).(net.Conn); ok {
				served(c)
			}
			inner.ServeHTTP(w, r)
		})
		srv.ConnState = func(c net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				mu.Lock()
				waiting[c] = time.Now()
				mu.Unlock()
			case http.StateHijacked:
				served(c)
			case http.StateClosed:
				mu.Lock()
				t, ok := waiting[c]
				delete(waiting, c)
				mu.Unlock()
				if ok && time.Since(t) >= cfg.ReadHeaderTimeout {
					counter.Add(ctx, "server", ReasonTimeout)
				}
			}
		}
	}
	return srv
}

type connKey struct{}

// capBody caps every request body at limit (0: no cap).
func capBody(h http.Handler, limit int64) http.Handler {
	if limit <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > limit {
			TooLarge(w, limit)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		h.ServeHTTP(w, r)
	})
}

// TooLarge answers 413 with the cap in the reason.
func TooLarge(w http.ResponseWriter, limit int64) {
	w.Header().Set("Connection", "close")
	writeJSON(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large", "request body larger than "+itoa(limit)+" bytes")
}

// IsStream reports whether r opens a long-lived response: a GET upgrading to a WebSocket or
// asking for an event stream. Only GETs: their bodies are not read, so clearing the read
// deadline lets no one send a body slowly.
func IsStream(r *http.Request) bool {
	if r.Method != http.MethodGet {
		return false
	}
	if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		return true
	}
	return strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

// exempt clears the server's deadlines for streams (IsStream): their headers are in, and an
// event stream or a WebSocket keeps its own liveness checks (heartbeats, pings). net/http clears
// a hijacked connection's deadlines itself; an event stream is never hijacked, and without this
// HTTP_WRITE_TIMEOUT would end it (TestStreamsExempt).
func exempt(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if IsStream(r) {
			Stream(w)
		}
		h.ServeHTTP(w, r)
	})
}

// Stream clears the read and write deadlines of w's connection, for a response that may
// legitimately outlast HTTP_WRITE_TIMEOUT (a recording download to a slow network). It is a
// no-op when w does not support it.
func Stream(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
}
