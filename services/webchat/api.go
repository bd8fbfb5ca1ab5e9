package webchat

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/omnibus-dev/omnibus/pkg/webhook"
)

// The HTTP API is the widget protocol for clients without a WebSocket (server-side
// integrations, tests): the visitor authenticates with the headers below, POST takes a message
// or contact frame and answers its ack frame once the bus stored it, GET returns the visitor's
// log after a seq.
const (
	HeaderVisitor = "X-Webchat-Visitor"
	HeaderToken   = "X-Webchat-Token"
	maxPage       = 200
)

func (srv *server) apiVisitor(r *http.Request) (string, int, error) {
	if err := srv.originAllowed(r); err != nil {
		return "", http.StatusForbidden, err
	}
	v := r.Header.Get(HeaderVisitor)
	if err := CheckVisitor(srv.cfg.Secret, v, r.Header.Get(HeaderToken)); err != nil {
		return "", http.StatusUnauthorized, err
	}
	return v, 0, nil
}

// apiPost is POST /webchat/api/messages.
func (srv *server) apiPost(w http.ResponseWriter, r *http.Request) {
	visitor, status, err := srv.apiVisitor(r)
	if err != nil {
		srv.refuse(w, r, status, err)
		return
	}
	body, err := webhook.ReadBody(w, r, int64(srv.cfg.MaxFrame))
	if err != nil {
		srv.refuse(w, r, webhook.Status(err, http.StatusBadRequest), fmt.Errorf("frame: %w", err))
		return
	}
	f, err := ParseClientFrame(body, srv.cfg.MaxText)
	if err == nil && f.Type != FrameMessage && f.Type != FrameContact {
		err = fmt.Errorf("%w: POST takes message or contact frames", ErrFrame)
	}
	if err != nil {
		srv.refuse(w, r, http.StatusBadRequest, err)
		return
	}
	ack, err := srv.ingest(r.Context(), srv.rt.Guard.ClientKey(r), visitor, nil, f)
	if err != nil {
		ie := &ingestError{Code: CodeUnavailable, Err: err}
		errors.As(err, &ie)
		if ie.Retry > 0 {
			w.Header().Set("Retry-After", strconv.FormatInt(int64(ie.Retry.Seconds())+1, 10))
		}
		srv.refuse(w, r, ie.status(), ie)
		return
	}
	webhook.WriteJSON(w, http.StatusOK, ack)
}

// apiGet is GET /webchat/api/messages?since=N&limit=M: msg frames of the visitor's log after
// seq N, oldest first, and "last", the seq to pass as since next time.
func (srv *server) apiGet(w http.ResponseWriter, r *http.Request) {
	visitor, status, err := srv.apiVisitor(r)
	if err != nil {
		srv.refuse(w, r, status, err)
		return
	}
	q := r.URL.Query()
	since, limit := uint64(0), 50
	if v := q.Get("since"); v != "" {
		if since, err = strconv.ParseUint(v, 10, 64); err != nil {
			srv.refuse(w, r, http.StatusBadRequest, errors.New("since: want a seq (a non-negative integer)"))
			return
		}
	}
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > maxPage {
			srv.refuse(w, r, http.StatusBadRequest, fmt.Errorf("limit: want 1..%d", maxPage))
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), publishTimeout)
	defer cancel()
	entries, err := srv.log.read(ctx, visitor, since+1, 0, limit)
	if err != nil {
		srv.rt.Log.Error("web chat log unavailable", "visitor", visitor, "err", err)
		srv.refuse(w, r, http.StatusServiceUnavailable, errors.New("message log unavailable, retry"))
		return
	}
	frames := make([]ServerFrame, 0, len(entries))
	last := since
	for _, e := range entries {
		frames = append(frames, e.frame())
		last = e.Seq
	}
	webhook.WriteJSON(w, http.StatusOK, map[string]any{"messages": frames, "last": last})
}

func pathMatch(pattern, s string) (bool, error) {
	return path.Match(strings.ToLower(pattern), strings.ToLower(s))
}

//go:embed assets
var assetFS embed.FS

// assetHandler serves the widget and the demo page under /webchat/.
func assetHandler() (http.Handler, error) {
	sub, err := fs.Sub(assetFS, "assets")
	if err != nil {
		return nil, err
	}
	files := http.StripPrefix("/webchat/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		switch path.Ext(r.URL.Path) {
		case ".js", ".css":
			// Embedded on other sites: loadable cross-origin, cached briefly so a deploy spreads.
			h.Set("Cache-Control", "public, max-age=300")
			h.Set("Cross-Origin-Resource-Policy", "cross-origin")
		default:
			h.Set("Cache-Control", "no-cache")
			h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' https: data:; frame-ancestors 'none'")
			h.Set("Referrer-Policy", "no-referrer")
		}
		files.ServeHTTP(w, r)
	}), nil
}
