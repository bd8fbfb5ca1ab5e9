package callload

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnibus-dev/omnibus/bench/internal/aio"
	"github.com/omnibus-dev/omnibus/bench/internal/stats"
	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/services/crm"
	"github.com/omnibus-dev/omnibus/services/desk"
	"github.com/omnibus-dev/omnibus/services/sandbox"
	"github.com/omnibus-dev/omnibus/services/sandbox/caller"
	"github.com/omnibus-dev/omnibus/services/unifier"
	"github.com/omnibus-dev/omnibus/services/voice"
)

// throughDesk is the omnibus phase through the whole path to the agent: the all-in-one (embedded
// NATS and Postgres) running the sandbox, the voice connector, the unifier, the CRM connector and
// the desk; a supervisor's workbench event stream is open, as a browser's is, and every ringing
// call it announces is followed by the 360° panel request the workbench makes.
func throughDesk(ctx context.Context, cfg Config, audio []int16, rep *Report) error {
	dir, err := os.MkdirTemp("", "callload-desk")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	env := map[string]string{"DESK_DEV_LOGIN": "true", "DESK_ASSIGN": "false"}
	if err := voiceEnv(env, cfg, dir); err != nil {
		return err
	}
	env["DESK_RECORDING_BUCKET"] = env["VOICE_RECORDING_BUCKET"]
	in, err := aio.Start(ctx, aio.Options{Name: "calls", NATSSync: "2m", Log: cfg.Log,
		Services: func() []service.Service {
			return []service.Service{sandbox.Service(), voice.Service(), unifier.Service(), crm.Service(), desk.Service()}
		},
		Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
	})
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }()
	nc, err := nats.Connect(in.NATSURL, nats.Name("callload"))
	if err != nil {
		return err
	}
	defer nc.Close()
	client, err := bus.Connect(nc, bus.WithLogger(cfg.Log), in.Sealer()) // call.started's caller number is sealed
	if err != nil {
		return err
	}
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	pop, err := watchDesk(rctx, in.Base)
	if err != nil {
		return err
	}
	defer func() { stop(); pop.wait() }() // the stream ends with rctx
	return drive(ctx, rctx, cfg, audio, client, env["VOICE_SIP_LISTEN"], pop, rep)
}

// popWatch reads the desk's event stream as a supervisor's workbench does and records, per call,
// when its ringing was announced and when the caller's 360° panel was answered.
type popWatch struct {
	mu      sync.Mutex
	ringing map[string]time.Time // call id → announced
	panel   map[string]time.Time // call id → 360° panel answered
	done    chan struct{}
}

func watchDesk(ctx context.Context, base string) (*popWatch, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/desk/dev/login?agent=supervisor-wang&role=supervisor&format=token", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("desk dev login: %d: %w", resp.StatusCode, err)
	}
	if tok.AccessToken == "" {
		return nil, fmt.Errorf("desk dev login: %d: no token", resp.StatusCode)
	}
	auth := "Bearer " + tok.AccessToken
	req, err = http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/events", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("Accept", "text/event-stream")
	stream, err := http.DefaultClient.Do(req) //nolint:bodyclose // the reader goroutine below closes it when the stream ends
	if err != nil {
		return nil, err
	}
	if stream.StatusCode != http.StatusOK {
		stream.Body.Close()
		return nil, fmt.Errorf("desk event stream: %s", stream.Status)
	}
	w := &popWatch{ringing: map[string]time.Time{}, panel: map[string]time.Time{}, done: make(chan struct{})}
	var panels sync.WaitGroup
	go func() {
		defer close(w.done)
		defer panels.Wait()
		defer stream.Body.Close()
		sc := bufio.NewScanner(stream.Body)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			at := time.Now()
			var n struct {
				Type       string `json:"type"`
				CustomerID string `json:"customer_id"`
				Data       struct {
					Call struct {
						CallID string `json:"call_id"`
						State  string `json:"state"`
					} `json:"call"`
				} `json:"data"`
			}
			if json.Unmarshal([]byte(data), &n) != nil || n.Type != "desk.call" || n.Data.Call.State != "ringing" {
				continue
			}
			id := n.Data.Call.CallID
			w.mu.Lock()
			_, seen := w.ringing[id]
			if !seen {
				w.ringing[id] = at
			}
			w.mu.Unlock()
			if seen || n.CustomerID == "" {
				continue
			}
			// The workbench pops the caller's 360° panel: GET /api/customers/{id}.
			panels.Add(1)
			go func() {
				defer panels.Done()
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/customers/"+n.CustomerID, nil)
				if err != nil {
					return
				}
				req.Header.Set("Authorization", auth)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					w.mu.Lock()
					w.panel[id] = time.Now()
					w.mu.Unlock()
				}
			}()
		}
	}()
	return w, nil
}

// wait returns once the stream is closed (its context cancelled) and the panel requests ended.
func (w *popWatch) wait() { <-w.done }

// latencies are each call's INVITE → ringing announced and INVITE → panel answered, in ms;
// callOf maps a call id to its caller's number, byFrom a number to its call.
func (w *popWatch) latencies(callOf map[string]string, byFrom map[string]caller.Call) (ringing, panel *stats.Dist) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var r, p []float64
	for id, at := range w.ringing {
		c, ok := byFrom[callOf[id]]
		if !ok {
			continue
		}
		r = append(r, float64(at.Sub(c.Invited).Microseconds())/1000)
		if pt, ok := w.panel[id]; ok {
			p = append(p, float64(pt.Sub(c.Invited).Microseconds())/1000)
		}
	}
	return stats.Of(r), stats.Of(p)
}
