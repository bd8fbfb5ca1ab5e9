package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Heartbeat is how often an idle event stream sends a comment (keeps proxies from closing it).
var Heartbeat = 15 * time.Second

// events streams the hub's notices as Server-Sent Events: one "data:" line of JSON per notice
// (hub.Notice). The first event is {"type":"desk.hello"}; a page that (re)connects reloads what
// it shows, so nothing missed while disconnected stays missing.
func (a *API) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		fail(w, http.StatusInternalServerError, "streaming unsupported")
		return
	}
	ch, cancel := a.Hub.SubscribeAs(principal(r).AgentID)
	defer cancel()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprintf(w, "retry: 2000\ndata: {\"type\":\"desk.hello\",\"agent_id\":%q}\n\n", principal(r).AgentID); err != nil {
		return
	}
	fl.Flush()
	tick := time.NewTicker(Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-a.Done:
			return
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil {
				return
			}
			fl.Flush()
		case n, open := <-ch:
			if !open {
				return // fell behind: the browser reconnects and reloads
			}
			b, err := json.Marshal(n)
			if err != nil {
				continue
			}
			if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
				return
			}
			fl.Flush()
		}
	}
}
