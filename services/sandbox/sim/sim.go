// Package sim is the machinery every vendor simulator in the sandbox shares: routes mounted under
// /sandbox/<vendor>/ with per-route fault injection (latency, error ratio, hangs, a specific
// vendor error code), a recorder of what the connectors sent (queryable by tests and the demo),
// the admin API that changes faults at run time, and the simulated customers.
//
// A vendor simulator is a package (sandbox/wecom, sandbox/aliyun, ...) that registers its routes
// with Env.Handle, answers with the vendor's own shapes and error codes, checks the connector's
// signatures exactly as the vendor does, and records every accepted outbound call with
// Env.Record. Faults are keyed "<vendor> <op>", e.g. "wecom kf/send_msg"; "<vendor> *" applies
// to every route of a vendor.
package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Prefix is where every vendor simulator is mounted: /sandbox/<vendor>/<the vendor's own path>.
const Prefix = "/sandbox/"

// Fault is what a route does wrong, on purpose.
type Fault struct {
	// Latency is added before the route answers (or fails).
	Latency time.Duration `json:"latency,omitempty"`
	// Jitter adds a uniformly random extra delay in [0, Jitter).
	Jitter time.Duration `json:"jitter,omitempty"`
	// ErrorRatio is the share of calls (0..1) answered with the vendor error Code.
	ErrorRatio float64 `json:"error_ratio,omitempty"`
	// Code is the vendor error code to answer with (e.g. "42001" for a WeCom expired token,
	// "isv.BUSINESS_LIMIT_CONTROL" for Aliyun throttling); "" is the vendor's generic system
	// error. The route's Fail function renders it in the vendor's shape.
	Code string `json:"code,omitempty"`
	// TimeoutRatio is the share of calls (0..1) that never answer: the request is held until the
	// client gives up (or Hold passes), as a hung vendor does.
	TimeoutRatio float64 `json:"timeout_ratio,omitempty"`
	// Hold bounds a hang; default 30s.
	Hold time.Duration `json:"hold,omitempty"`
}

// MarshalJSON writes durations as Go duration strings ("250ms").
func (f Fault) MarshalJSON() ([]byte, error) {
	type wire struct {
		Latency      string  `json:"latency,omitempty"`
		Jitter       string  `json:"jitter,omitempty"`
		ErrorRatio   float64 `json:"error_ratio,omitempty"`
		Code         string  `json:"code,omitempty"`
		TimeoutRatio float64 `json:"timeout_ratio,omitempty"`
		Hold         string  `json:"hold,omitempty"`
	}
	d := func(v time.Duration) string {
		if v == 0 {
			return ""
		}
		return v.String()
	}
	return json.Marshal(wire{d(f.Latency), d(f.Jitter), f.ErrorRatio, f.Code, f.TimeoutRatio, d(f.Hold)})
}

// UnmarshalJSON accepts durations as Go duration strings or as integer milliseconds.
func (f *Fault) UnmarshalJSON(b []byte) error {
	var w struct {
		Latency, Jitter, Hold json.RawMessage
		ErrorRatio            float64 `json:"error_ratio"`
		Code                  string
		TimeoutRatio          float64 `json:"timeout_ratio"`
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return fmt.Errorf("fault: %w (fields: latency, jitter, error_ratio, code, timeout_ratio, hold)", err)
	}
	for _, p := range []struct {
		raw json.RawMessage
		dst *time.Duration
	}{{w.Latency, &f.Latency}, {w.Jitter, &f.Jitter}, {w.Hold, &f.Hold}} {
		if len(p.raw) == 0 || string(p.raw) == "null" {
			continue
		}
		var s string
		if json.Unmarshal(p.raw, &s) == nil {
			d, err := time.ParseDuration(s)
			if err != nil {
				return fmt.Errorf("fault: %w", err)
			}
			*p.dst = d
			continue
		}
		var ms int64
		if err := json.Unmarshal(p.raw, &ms); err != nil {
			return fmt.Errorf("fault: duration %s is neither \"250ms\" nor milliseconds", p.raw)
		}
		*p.dst = time.Duration(ms) * time.Millisecond
	}
	f.ErrorRatio, f.Code, f.TimeoutRatio = w.ErrorRatio, w.Code, w.TimeoutRatio
	return f.validate()
}

func (f Fault) validate() error {
	if f.ErrorRatio < 0 || f.ErrorRatio > 1 || f.TimeoutRatio < 0 || f.TimeoutRatio > 1 {
		return errors.New("fault: error_ratio and timeout_ratio must be within 0..1")
	}
	if f.Latency < 0 || f.Jitter < 0 || f.Hold < 0 {
		return errors.New("fault: durations must not be negative")
	}
	return nil
}

// ParseFaults reads a fault table, as in SANDBOX_FAULTS: a JSON object from route key to Fault,
// e.g. {"wecom kf/send_msg": {"latency": "200ms", "error_ratio": 0.2, "code": "45009"}}.
func ParseFaults(s string) (map[string]Fault, error) {
	out := map[string]Fault{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, fmt.Errorf("fault table: %w", err)
	}
	return out, nil
}

// Route is one simulated vendor endpoint.
type Route struct {
	// Vendor is the simulator's name, the first path segment under /sandbox/ ("wecom").
	Vendor string
	// Op names the operation in fault keys and records ("kf/send_msg", "SendSms").
	Op string
	// Pattern is the net/http pattern below the vendor prefix: "POST /cgi-bin/kf/send_msg".
	Pattern string
	// Handler answers a healthy call.
	Handler http.HandlerFunc
	// Fail answers an injected error in the vendor's shape: code is Fault.Code ("" = the
	// vendor's generic system error).
	Fail func(w http.ResponseWriter, r *http.Request, code string)
}

// Key is the route's fault key.
func (r Route) Key() string { return r.Vendor + " " + r.Op }

// Record is one call a connector made that the simulator accepted (or rejected, with Error).
type Record struct {
	Seq    int64           `json:"seq"`
	At     time.Time       `json:"at"`
	Vendor string          `json:"vendor"`
	Op     string          `json:"op"`
	To     string          `json:"to,omitempty"` // the recipient, in the vendor's terms
	Data   json.RawMessage `json:"data"`         // what was sent, as the vendor parsed it
	Error  string          `json:"error,omitempty"`
}

// Stats counts a route's calls by outcome.
type Stats struct {
	Calls    int64 `json:"calls"`
	Injected int64 `json:"injected_errors"`
	Hung     int64 `json:"hung"`
}

// Env is the sandbox every simulator mounts on.
type Env struct {
	Log *slog.Logger
	// HookBase is where the connectors' webhooks live (http://host:port/hooks); simulated
	// customers post vendor callbacks to HookURL(connector, path).
	HookBase string
	// Client is what simulated customers use to call connectors.
	Client *http.Client

	mux     *http.ServeMux
	mu      sync.Mutex
	faults  map[string]Fault
	stats   map[string]*Stats
	routes  map[string]Route
	records []Record
	seq     int64
	keep    int
	waiters []chan struct{}
	rnd     func() float64
}

// NewEnv returns an Env that mounts routes on mux. keep bounds the records kept (oldest dropped).
func NewEnv(mux *http.ServeMux, hookBase string, faults map[string]Fault, keep int, log *slog.Logger) *Env {
	if keep <= 0 {
		keep = 10000
	}
	if faults == nil {
		faults = map[string]Fault{}
	}
	e := &Env{Log: log, HookBase: strings.TrimRight(hookBase, "/"), Client: &http.Client{Timeout: 10 * time.Second},
		mux: mux, faults: faults, stats: map[string]*Stats{}, routes: map[string]Route{}, keep: keep, rnd: rand.Float64}
	mux.HandleFunc("GET "+Prefix+"_admin/faults", e.getFaults)
	mux.HandleFunc("PUT "+Prefix+"_admin/faults/{key...}", e.putFault)
	mux.HandleFunc("DELETE "+Prefix+"_admin/faults/{key...}", e.deleteFault)
	mux.HandleFunc("DELETE "+Prefix+"_admin/faults", e.clearFaults)
	mux.HandleFunc("GET "+Prefix+"_admin/records", e.getRecords)
	mux.HandleFunc("GET "+Prefix+"_admin/routes", e.getRoutes)
	return e
}

// Handle mounts r at /sandbox/<vendor><path> behind its fault injection.
func (e *Env) Handle(r Route) {
	method, path, ok := strings.Cut(r.Pattern, " ")
	if !ok {
		method, path = "", r.Pattern
	} else {
		method += " "
	}
	key := r.Key()
	e.mu.Lock()
	e.routes[key] = r
	e.stats[key] = &Stats{}
	e.mu.Unlock()
	e.mux.HandleFunc(method+Prefix+r.Vendor+path, func(w http.ResponseWriter, req *http.Request) {
		f := e.fault(r)
		delay := f.Latency
		if f.Jitter > 0 {
			delay += time.Duration(e.rnd() * float64(f.Jitter))
		}
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-req.Context().Done():
				t.Stop()
				return
			}
		}
		switch roll := e.rnd(); {
		case roll < f.TimeoutRatio:
			e.count(key, func(s *Stats) { s.Hung++ })
			hold := f.Hold
			if hold == 0 {
				hold = 30 * time.Second
			}
			// Reading the body to EOF lets net/http watch the connection, so the request's
			// context ends when the client gives up.
			_, _ = io.Copy(io.Discard, req.Body)
			t := time.NewTimer(hold)
			defer t.Stop()
			select {
			case <-t.C:
				// A hung vendor never answers: drop the connection rather than let net/http
				// send an empty 200 when the handler returns.
				panic(http.ErrAbortHandler)
			case <-req.Context().Done():
			}
			return
		case roll < f.TimeoutRatio+f.ErrorRatio:
			e.count(key, func(s *Stats) { s.Injected++ })
			if r.Fail != nil {
				r.Fail(w, req, f.Code)
			} else {
				http.Error(w, "injected fault "+f.Code, http.StatusInternalServerError)
			}
			return
		}
		r.Handler(w, req)
	})
}

// fault counts the call and returns the route's fault (its own, else its vendor's "*").
func (e *Env) fault(r Route) Fault {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stats[r.Key()].Calls++
	if f, ok := e.faults[r.Key()]; ok {
		return f
	}
	return e.faults[r.Vendor+" *"]
}

func (e *Env) count(key string, f func(*Stats)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s := e.stats[key]; s != nil {
		f(s)
	}
}

// SetFault sets (or, with the zero Fault, clears) the fault of a route key.
func (e *Env) SetFault(key string, f Fault) error {
	if err := f.validate(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if f == (Fault{}) {
		delete(e.faults, key)
	} else {
		e.faults[key] = f
	}
	return nil
}

// Faults returns a copy of the fault table.
func (e *Env) Faults() map[string]Fault {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]Fault, len(e.faults))
	for k, v := range e.faults {
		out[k] = v
	}
	return out
}

// HookURL is where connector's webhook path lives: HookBase + "/" + connector + path, with a
// "{connector}" in HookBase replaced by the connector's name (docker-compose runs each
// connector in its own container: SANDBOX_HOOK_BASE=http://{connector}:8080/hooks).
func (e *Env) HookURL(connector, path string) string {
	base := strings.ReplaceAll(e.HookBase, "{connector}", connector)
	return base + "/" + connector + path
}

// Hook is HookURL for a path that starts with the connector's name: "/ticket/jira" is
// HookURL("ticket", "/jira"). "" when the sandbox has no HookBase.
func (e *Env) Hook(path string) string {
	if e.HookBase == "" {
		return ""
	}
	connector, rest, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	return e.HookURL(connector, "/"+rest)
}

// HookWithToken is Hook(path) with ?token=<token> for vendors whose pushes carry a shared token in
// the URL (they sign nothing); "" when the sandbox has no HookBase.
func (e *Env) HookWithToken(path, token string) string {
	u := e.Hook(path)
	if u != "" && token != "" {
		u += "?token=" + url.QueryEscape(token)
	}
	return u
}

// Record stores what a connector sent. data is marshalled as JSON.
func (e *Env) Record(vendor, op, to string, data any, callErr error) Record {
	raw, err := json.Marshal(data)
	if err != nil {
		raw, _ = json.Marshal(fmt.Sprint(data))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seq++
	rec := Record{Seq: e.seq, At: time.Now().UTC(), Vendor: vendor, Op: op, To: to, Data: raw}
	if callErr != nil {
		rec.Error = callErr.Error()
	}
	e.records = append(e.records, rec)
	// Trim in chunks of a quarter: copying the kept records at every call once the buffer is
	// full made every sandbox call O(SANDBOX_RECORDS) under the lock.
	if len(e.records) >= e.keep+max(e.keep/4, 1) {
		e.records = append(e.records[:0:0], e.records[len(e.records)-e.keep:]...)
	}
	for _, w := range e.waiters {
		close(w)
	}
	e.waiters = nil
	return rec
}

// Filter selects records; zero fields match everything.
type Filter struct {
	Vendor, Op, To string
	After          int64 // only records with Seq > After
	Failed         *bool // only rejected (true) or accepted (false) calls
}

func (f Filter) match(r Record) bool {
	return (f.Vendor == "" || r.Vendor == f.Vendor) && (f.Op == "" || r.Op == f.Op) &&
		(f.To == "" || r.To == f.To) && r.Seq > f.After && (f.Failed == nil || *f.Failed == (r.Error != ""))
}

// kept is the newest keep records (the buffer holds up to a quarter more between trims). The
// caller holds e.mu.
func (e *Env) kept() []Record {
	return e.records[max(0, len(e.records)-e.keep):]
}

// Records returns the kept records that match f, oldest first.
func (e *Env) Records(f Filter) []Record {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Record
	for _, r := range e.kept() {
		if f.match(r) {
			out = append(out, r)
		}
	}
	return out
}

// WaitRecord blocks until a record matching f exists, or ctx ends.
func (e *Env) WaitRecord(ctx context.Context, f Filter) (Record, error) {
	for {
		e.mu.Lock()
		for _, r := range e.kept() {
			if f.match(r) {
				e.mu.Unlock()
				return r, nil
			}
		}
		w := make(chan struct{})
		e.waiters = append(e.waiters, w)
		e.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
			return Record{}, fmt.Errorf("no %s %s record for %q: %w", f.Vendor, f.Op, f.To, ctx.Err())
		}
	}
}

// Stats returns the call counters of every route.
func (e *Env) Stats() map[string]Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]Stats, len(e.stats))
	for k, v := range e.stats {
		out[k] = *v
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) { WriteJSON(w, status, "application/json", v) }

func (e *Env) getFaults(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, e.Faults()) }

func (e *Env) putFault(w http.ResponseWriter, r *http.Request) {
	var f Fault
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&f); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	if err := e.SetFault(r.PathValue("key"), f); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	e.Log.Info("sandbox fault set", "route", r.PathValue("key"), "fault", f)
	writeJSON(w, http.StatusOK, e.Faults())
}

func (e *Env) deleteFault(w http.ResponseWriter, r *http.Request) {
	_ = e.SetFault(r.PathValue("key"), Fault{})
	writeJSON(w, http.StatusOK, e.Faults())
}

func (e *Env) clearFaults(w http.ResponseWriter, _ *http.Request) {
	e.mu.Lock()
	e.faults = map[string]Fault{}
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]Fault{})
}

func (e *Env) getRoutes(w http.ResponseWriter, _ *http.Request) {
	e.mu.Lock()
	type route struct {
		Key, Pattern string
		Stats        Stats
	}
	out := make([]route, 0, len(e.routes))
	for k, r := range e.routes {
		out = append(out, route{k, r.Pattern, *e.stats[k]})
	}
	e.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	writeJSON(w, http.StatusOK, out)
}

func (e *Env) getRecords(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := Filter{Vendor: q.Get("vendor"), Op: q.Get("op"), To: q.Get("to")}
	if a := q.Get("after"); a != "" {
		n, err := strconv.ParseInt(a, 10, 64)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "after: want a sequence number"})
			return
		}
		f.After = n
	}
	recs := e.Records(f)
	if recs == nil {
		recs = []Record{}
	}
	writeJSON(w, http.StatusOK, recs)
}
