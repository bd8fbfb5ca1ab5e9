package connector

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/webhook"
)

// Webhook is one vendor callback endpoint.
type Webhook struct {
	// Method, default POST.
	Method string
	// Path under /hooks/<connector>, e.g. "/messages".
	Path string
	// MaxBody caps the request body; larger requests get 413. Default 1 MiB.
	MaxBody int64
	// Verify checks the vendor's signature and timestamp window. Required: a webhook without a
	// vendor signature must say so with NoSignature.
	Verify func(r *http.Request, body []byte) error
	// NoSignature acknowledges that the vendor signs nothing (Verify may then be nil).
	NoSignature bool
	// Answer, optional, handles a verified request that is not a push but a check the vendor
	// makes on the push URL itself (Douyin's verify_webhook POSTs a challenge to echo). It runs
	// after Verify; when it returns ok, the request is answered 200 with answer as JSON, and
	// Decode does not run. An error is answered as Decode's are.
	Answer func(r *http.Request, body []byte) (answer any, ok bool, err error)
	// Decode turns the verified request into the events to publish. Return an error wrapping
	// webhook.ErrMalformed for bad input (400 with the reason), or webhook.ErrUnavailable for a
	// transient failure (503 + Retry-After: the vendor retries). Zero events is fine (e.g. a
	// vendor ping): the vendor is answered at once.
	Decode func(r *http.Request, body []byte) ([]bus.Outgoing, error)
	// Respond writes the vendor's expected acknowledgement once every event was acked by
	// JetStream. Default: 200 {"ok":true}.
	Respond func(w http.ResponseWriter, r *http.Request, published []bus.Outgoing)
	// PublishTimeout bounds the wait for JetStream (vendors time out callbacks after a few
	// seconds and retry). Default 3s.
	PublishTimeout time.Duration
}

// Webhook mounts h at /hooks/<connector><h.Path>.
func (rt *Runtime) Webhook(h Webhook) error {
	if h.Verify == nil && !h.NoSignature {
		return fmt.Errorf("%s webhook %s: Verify is required (set NoSignature for vendors that sign nothing)", rt.Spec.Name, h.Path)
	}
	if h.Decode == nil {
		return fmt.Errorf("%s webhook %s: Decode is required", rt.Spec.Name, h.Path)
	}
	if h.Method == "" {
		h.Method = http.MethodPost
	}
	if h.MaxBody == 0 {
		h.MaxBody = webhook.MaxBody
	}
	if h.PublishTimeout == 0 {
		h.PublishTimeout = 3 * time.Second
	}
	if h.Respond == nil {
		h.Respond = func(w http.ResponseWriter, _ *http.Request, _ []bus.Outgoing) {
			webhook.WriteJSON(w, http.StatusOK, map[string]any{"ok": true})
		}
	}
	pattern := h.Method + " /hooks/" + rt.Spec.Name + h.Path
	rt.mux.Handle(pattern, rt.limitHook(rt.inbound(h)))
	rt.addRoute(pattern)
	return nil
}

// limitHook applies the webhook rate limit (RATE_WEBHOOK, per client address) to h.
func (rt *Runtime) limitHook(h http.Handler) http.Handler {
	return rt.hookLimit.Guard(rt.Guard.ClientKey, "too many webhook requests from this address to "+rt.Spec.Name+"; retry after the time in Retry-After", h)
}

func (rt *Runtime) inbound(h Webhook) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := webhook.ReadBody(w, r, h.MaxBody)
		if err != nil {
			webhook.Fail(w, r, rt.Log, webhook.Status(err, http.StatusBadRequest), err)
			return
		}
		if h.Verify != nil {
			if err := h.Verify(r, body); err != nil {
				webhook.Fail(w, r, rt.Log, webhook.Status(err, http.StatusUnauthorized), err)
				return
			}
		}
		if h.Answer != nil {
			answer, ok, err := h.Answer(r, body)
			if err != nil {
				webhook.Fail(w, r, rt.Log, webhook.Status(err, http.StatusBadRequest), err)
				return
			}
			if ok {
				webhook.WriteJSON(w, http.StatusOK, answer)
				return
			}
		}
		batch, err := h.Decode(r, body)
		if err != nil {
			webhook.Fail(w, r, rt.Log, webhook.Status(err, http.StatusBadRequest), err)
			return
		}
		if len(batch) > 0 {
			ctx, cancel := context.WithTimeout(r.Context(), h.PublishTimeout)
			defer cancel()
			// In chunks, in order: a vendor's push of thousands of items is stored within its
			// callback timeout, and answered only once every item is.
			if err := rt.PublishChunks(ctx, batch); err != nil {
				// Not acknowledged: the vendor retries, and the event id dedupes the retry.
				rt.Log.ErrorContext(r.Context(), "webhook publish failed; vendor will retry", "path", r.URL.Path, "err", err)
				status := http.StatusServiceUnavailable
				if errors.Is(err, ErrUndeclared) {
					status = http.StatusInternalServerError
				}
				webhook.WriteNotStored(w, status, err)
				return
			}
		}
		h.Respond(w, r, batch)
	}
}
