package sandbox

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

// customerAPI lets tests, the demo and people make a given customer write on a given channel:
//
//	GET  /sandbox/_admin/customers                     the population
//	POST /sandbox/_admin/customers/{id}/write          {"channel": "sms", "text": "..."}
//
// The write goes through the vendor exactly as the scenario's do (signed callback, uplink push,
// WebSocket), and answers once the connector accepted it, or with the connector's refusal.
func customerAPI(mux *http.ServeMux, people []sim.Customer, channels []sim.Channel) {
	byName := map[string]sim.Channel{}
	names := make([]string, 0, len(channels))
	for _, c := range channels {
		byName[c.Name()] = c
		names = append(names, c.Name())
	}
	reply := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("GET "+sim.Prefix+"_admin/customers", func(w http.ResponseWriter, _ *http.Request) {
		reply(w, http.StatusOK, map[string]any{"channels": names, "customers": people})
	})
	mux.HandleFunc("POST "+sim.Prefix+"_admin/customers/{id}/write", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.Atoi(r.PathValue("id"))
		if err != nil || id < 1 || id > len(people) {
			reply(w, http.StatusNotFound, map[string]string{"error": "no customer " + r.PathValue("id"), "hint": "ids run from 1 to " + strconv.Itoa(len(people))})
			return
		}
		var in struct{ Channel, Text string }
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&in); err != nil || in.Text == "" {
			reply(w, http.StatusBadRequest, map[string]string{"error": `want {"channel": "...", "text": "..."}`})
			return
		}
		ch, ok := byName[in.Channel]
		if !ok {
			reply(w, http.StatusBadRequest, map[string]any{"error": "unknown channel " + strconv.Quote(in.Channel), "channels": names})
			return
		}
		if err := ch.Write(r.Context(), people[id-1], in.Text); err != nil {
			reply(w, http.StatusBadGateway, map[string]string{"error": "the connector did not accept the message", "reason": err.Error()})
			return
		}
		reply(w, http.StatusOK, map[string]any{"customer": people[id-1], "channel": in.Channel})
	})
}
