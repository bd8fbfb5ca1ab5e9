package service

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Startup tracks which services of a process serve yet: a service is started once it calls
// Deps.MarkStarted (its routes are mounted and its consumers subscribed). Until every service has,
// the process's /readyz fails its "services" check with the names still starting, so a load
// balancer, a test or a user never reaches a route that is not mounted yet.
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
