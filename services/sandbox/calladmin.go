package sandbox

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	"github.com/omnibus-dev/omnibus/services/sandbox/speech"
)

// callAPI lets tests, the demo and people make a given customer phone the hotline now, saying
// given sentences of the speech catalogue:
//
//	POST /sandbox/_admin/customers/{id}/call   {"say": ["zh-order-number", "zh-double-charge"], "pause_ms": 800, "tail_ms": 1000}
//	POST /sandbox/_admin/customers/{id}/call   {"script": "bank-card-complaint"}   (CallScripts)
//
// It answers 202 once the call is placed (it runs on: the answer does not wait for the hang-up)
// with the caller's number, the hotline and the sentences' text; 409 when simulated calls are off
// (the voice connector's port is chosen at start); 400 naming the sentence the catalogue lacks
// or the script there is not. Calls placed this way end with the sandbox (ctx).
func callAPI(ctx context.Context, mux *http.ServeMux, calls *CallScenario, people []sim.Customer, wg *sync.WaitGroup) {
	reply := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("POST "+sim.Prefix+"_admin/customers/{id}/call", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.Atoi(r.PathValue("id"))
		if err != nil || id < 1 || id > len(people) {
			reply(w, http.StatusNotFound, map[string]string{"error": "no customer " + r.PathValue("id"), "hint": "ids run from 1 to " + strconv.Itoa(len(people))})
			return
		}
		if calls == nil {
			reply(w, http.StatusConflict, map[string]string{"error": "simulated calls are off: set SANDBOX_CALL_INTERVAL > 0 and give the voice connector a fixed SIP port"})
			return
		}
		var in struct {
			Script  string   `json:"script"`
			Say     []string `json:"say"`
			PauseMS int      `json:"pause_ms"`
			TailMS  int      `json:"tail_ms"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&in); err != nil || (len(in.Say) == 0) == (in.Script == "") ||
			len(in.Say) > 20 || in.PauseMS < 0 || in.PauseMS > 60_000 || in.TailMS < 0 || in.TailMS > 60_000 {
			reply(w, http.StatusBadRequest, map[string]string{"error": `want {"script": "<name>"} or {"say": ["<catalogue id>", ...] (1-20), "pause_ms": 0-60000}, and "tail_ms": 0-60000`})
			return
		}
		script := CallScript{Name: "say", Utterances: in.Say, Pause: 800 * time.Millisecond}
		if in.Script != "" {
			var ok bool
			if script, ok = CallScripts[in.Script]; !ok {
				names := make([]string, 0, len(CallScripts))
				for n := range CallScripts {
					names = append(names, n)
				}
				reply(w, http.StatusBadRequest, map[string]any{"error": "no call script " + strconv.Quote(in.Script), "scripts": names})
				return
			}
		}
		if in.PauseMS > 0 {
			script.Pause = time.Duration(in.PauseMS) * time.Millisecond
		}
		tail := time.Second
		if in.TailMS > 0 {
			tail = time.Duration(in.TailMS) * time.Millisecond
		}
		audio, said, err := script.Audio()
		if err != nil {
			ids := make([]string, 0)
			for _, u := range speech.Catalogue() {
				ids = append(ids, u.ID)
			}
			reply(w, http.StatusBadRequest, map[string]any{"error": err.Error(), "catalogue": ids})
			return
		}
		if ctx.Err() != nil {
			reply(w, http.StatusServiceUnavailable, map[string]string{"error": "the sandbox is stopping"})
			return
		}
		c := people[id-1]
		wg.Go(func() {
			res, err := calls.Dialer.Call(ctx, c.Phone, calls.Hotline, audio, tail)
			if err != nil && ctx.Err() == nil {
				calls.Log.Warn("simulated customer could not call", "customer", c.ID, "status", res.Status, "err", err)
			}
		})
		reply(w, http.StatusAccepted, map[string]any{"customer": c, "from": c.Phone, "to": calls.Hotline, "said": said})
	})
}
