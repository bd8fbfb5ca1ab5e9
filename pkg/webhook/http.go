package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
)

// ErrTooLarge is wrapped by ReadBody when the body is over its cap: 413.
var ErrTooLarge = errors.New("body too large")

// MaxBody is the default body cap of a webhook: vendors' callbacks are far smaller.
const MaxBody int64 = 1 << 20

// ReadBody reads r's body, at most limit bytes (MaxBody when limit is 0). A larger body returns
// an error wrapping ErrTooLarge, and the connection is closed after the answer; any other read
// failure wraps ErrMalformed.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if limit <= 0 {
		limit = MaxBody
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if tooBig := (*http.MaxBytesError)(nil); errors.As(err, &tooBig) {
			return nil, fmt.Errorf("%w: larger than %d bytes", ErrTooLarge, limit)
		}
		return nil, fmt.Errorf("%w: read body: %w", ErrMalformed, err)
	}
	return body, nil
}

// Rejection is an error answered with its own HTTP status, for refusals no sentinel names
// (403 for an origin, 429 for a rate limit, or a 401 of a vendor's own signature error).
type Rejection struct {
	Status int
	Err    error
}

func (r *Rejection) Error() string { return r.Err.Error() }
func (r *Rejection) Unwrap() error { return r.Err }

// Reject returns err answered with status (see Status).
func Reject(status int, err error) error { return &Rejection{Status: status, Err: err} }

// Status returns the HTTP status that answers err: a Rejection's own, then 413 for ErrTooLarge,
// 503 for ErrUnavailable, 400 for ErrMalformed, 401 for ErrSignature and ErrExpired, and def
// for any other error.
func Status(err error, def int) int {
	var rj *Rejection
	switch {
	case errors.As(err, &rj):
		return rj.Status
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable
	case errors.Is(err, ErrMalformed):
		return http.StatusBadRequest
	case errors.Is(err, ErrSignature), errors.Is(err, ErrExpired):
		return http.StatusUnauthorized
	}
	return def
}

// WriteJSON answers status with v as JSON. Answers are not cached (Cache-Control: no-store).
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError answers status with {"error": <status text>, "reason": ClientReason(err)}: no
// library internals reach the client (log err for those; Fail does). A 503 carries
// Retry-After (1 s unless the caller set one), so the vendor or client delivers again.
func WriteError(w http.ResponseWriter, status int, err error) {
	if status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "1")
	}
	WriteJSON(w, status, map[string]any{"error": http.StatusText(status), "reason": ClientReason(err)})
}

// WriteNotStored answers a valid request whose events did not reach the bus: status (503, or
// 500 for a fault of the connector itself) with Retry-After: the vendor delivers it again, and
// the event ids deduplicate what was stored after all. The reason is ClientReason(err).
func WriteNotStored(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Retry-After", "1")
	WriteJSON(w, status, map[string]any{"error": "not stored, retry", "reason": ClientReason(err)})
}

// Fail logs a refused request (path, status, reason, remote address and attrs) at warning level
// and answers it with WriteError.
func Fail(w http.ResponseWriter, r *http.Request, log *slog.Logger, status int, err error, attrs ...any) {
	log.WarnContext(r.Context(), "request rejected",
		append([]any{"path", r.URL.Path, "status", status, "reason", err.Error(), "remote", r.RemoteAddr}, attrs...)...)
	WriteError(w, status, err)
}
