package service

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
)

// Startup tracks which services of a process serve yet: a service is started once it calls
// Deps.MarkStarted (its routes are mounted and its consumers subscribed). Until every service has,
// the process's /readyz fails its "services" check with the names still starting, so a load
// balancer, a test or a user never reaches a route that is not mounted yet; and Gate answers
// vendors' webhooks that have no route yet with 503, which they retry, instead of 404.
type Startup struct {
	mu      sync.Mutex
	pending map[string]bool
	done    chan struct{}
}

// NewStartup tracks the services named.
func NewStartup(names ...string) *Startup {
	s := &Startup{pending: map[string]bool{}, done: make(chan struct{})}
	for _, n := range names {
		s.pending[n] = true
	}
	if len(s.pending) == 0 {
		close(s.done)
	}
	return s
}

// Started marks name as serving. Calls after the first, and for names not tracked, do nothing.
func (s *Startup) Started(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.pending[name] {
		return
	}
	delete(s.pending, name)
	if len(s.pending) == 0 {
		close(s.done)
	}
}

// Done is closed once every service has started.
func (s *Startup) Done() <-chan struct{} { return s.done }

// Check is the readiness check: an error naming the services still starting.
func (s *Startup) Check(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) == 0 {
		return nil
	}
	names := make([]string, 0, len(s.pending))
	for n := range s.pending {
		names = append(names, n)
	}
	slices.Sort(names)
	return fmt.Errorf("starting: %s", strings.Join(names, ", "))
}

// Watch adds Check to h as its "services" readiness check.
func (s *Startup) Watch(h *Health) { h.AddCheck("services", s.Check) }

// For returns d with its Started hook marking name.
func (s *Startup) For(name string, d Deps) Deps {
	d.Started = func() { s.Started(name) }
	return d
}

// HooksPrefix is the path under which connectors mount vendor webhooks (/hooks/<connector>/...).
const HooksPrefix = "/hooks/"

// Gate returns the process's HTTP handler: mux, except that while the process is starting (not
// every service has called MarkStarted), a request under HooksPrefix that no webhook route takes
// yet is answered 503 Service Unavailable with Retry-After and the services still starting, rather
// than mux's 404 — vendors retry a 503 but drop a 404. A webhook whose route is mounted is served
// at once: its connector mounted it ready to take calls. Once startup is done, mux answers
// everything, an unknown hook with its usual 404. Standalone services and the all-in-one serve
// through it.
func (s *Startup) Gate(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-s.done:
		default:
			if strings.HasPrefix(r.URL.Path, HooksPrefix) && !hookMounted(mux, r) {
				if err := s.Check(r.Context()); err != nil {
					w.Header().Set("Retry-After", "1")
					http.Error(w, "service starting, retry shortly ("+err.Error()+")", http.StatusServiceUnavailable)
					return
				}
			}
		}
		mux.ServeHTTP(w, r)
	})
}

// hookMounted reports whether mux routes r to a webhook route (a pattern under HooksPrefix), not
// to a 404, a 405 or a catch-all of another service.
func hookMounted(mux *http.ServeMux, r *http.Request) bool {
	_, pattern := mux.Handler(r)
	i := strings.IndexByte(pattern, '/') // after the method and the host, if any
	return i >= 0 && strings.HasPrefix(pattern[i:], HooksPrefix)
}
