package connector

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Handle mounts h for a connector's routes that are not vendor webhooks: assets, a WebSocket, an
// API the connector's own clients call (the web chat widget). pattern is a net/http pattern
// ("GET /webchat/widget.js", "/webchat/ws") whose path must lie under /<Name>/ or
// /hooks/<Name>/, so that connectors cannot take each other's paths. Unlike Webhook, Handle adds
// no body cap, signature check or publish flow: h does its own. Routes under /hooks/<Name>/ get
// the webhook rate limit (RATE_WEBHOOK per client address) as Webhook's do.
func (rt *Runtime) Handle(pattern string, h http.Handler) error {
	if h == nil {
		return fmt.Errorf("%s route %q: nil handler", rt.Spec.Name, pattern)
	}
	path := pattern
	if i := strings.IndexByte(pattern, ' '); i >= 0 {
		path = strings.TrimLeft(pattern[i+1:], " \t")
	}
	if !strings.HasPrefix(path, "/") {
		return fmt.Errorf("%s route %q: the path must be absolute, without a host", rt.Spec.Name, pattern)
	}
	own, hooks := "/"+rt.Spec.Name+"/", "/hooks/"+rt.Spec.Name+"/"
	if !strings.HasPrefix(path, own) && !strings.HasPrefix(path, hooks) {
		return fmt.Errorf("%s route %q: the path must start with %s or %s", rt.Spec.Name, pattern, own, hooks)
	}
	if rt.mux == nil {
		return fmt.Errorf("%s route %q: the service runs without an HTTP mux", rt.Spec.Name, pattern)
	}
	if strings.HasPrefix(path, hooks) {
		h = rt.limitHook(h) // a vendor callback the connector serves itself: limited as webhooks are
	}
	rt.mux.Handle(pattern, h)
	rt.addRoute(pattern)
	return nil
}

// addRoute records a mounted pattern for the start-up log line, under rt.mu: setup may mount
// routes from several goroutines.
func (rt *Runtime) addRoute(pattern string) {
	rt.mu.Lock()
	rt.hooks = append(rt.hooks, pattern)
	rt.mu.Unlock()
}

// routes returns the patterns mounted so far.
func (rt *Runtime) routes() []string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return slices.Clone(rt.hooks)
}
