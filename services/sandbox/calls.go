package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/config"
	"github.com/omnibus-dev/omnibus/services/sandbox/caller"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	"github.com/omnibus-dev/omnibus/services/sandbox/speech"
)

// Utterance is a sentence of speech a simulated caller can say: 8 kHz 16-bit mono samples and
// the text they say (what a recogniser should hear).
type Utterance struct {
	Text string
	PCM  []int16
}

// CallScenario makes simulated customers phone the contact centre: one call per Interval, from
// a customer's mobile to Hotline, saying a few utterances separated by pauses, then hanging up.
// Calls overlap (each runs on its own), up to MaxConcurrent at once.
type CallScenario struct {
	Dialer        *caller.Dialer
	Customers     []sim.Customer
	Hotline       string
	Utterances    []Utterance
	Interval      time.Duration
	PerCall       int           // utterances per call, default 2
	Pause         time.Duration // between utterances, default 800 ms
	MaxConcurrent int           // default 4
	// Scripts are named calls (CallBankCardComplaint) that a share of the calls, ScriptShare in
	// [0, 1], follow instead of random utterances.
	Scripts     []CallScript
	ScriptShare float64
	Seed        int64
	Log         *slog.Logger
}

// Run places calls until ctx ends, then waits for the calls in progress to hang up.
func (s *CallScenario) Run(ctx context.Context) error {
	if s.Dialer == nil || len(s.Customers) == 0 || len(s.Utterances) == 0 || s.Interval <= 0 {
		return errors.New("call scenario: needs a dialer, customers, utterances and an interval")
	}
	per, pause, most := s.PerCall, s.Pause, s.MaxConcurrent
	if per <= 0 {
		per = 2
	}
	if pause <= 0 {
		pause = 800 * time.Millisecond
	}
	if most <= 0 {
		most = 4
	}
	r := rand.New(rand.NewPCG(uint64(s.Seed), 5060))
	slots := make(chan struct{}, most)
	var wg sync.WaitGroup
	defer wg.Wait()
	// The first call comes soon (a newcomer watching the desk should not wait a whole interval),
	// the others every Interval.
	next := time.NewTimer(min(s.Interval, 10*time.Second))
	defer next.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-next.C:
			next.Reset(s.Interval)
		}
		select {
		case slots <- struct{}{}:
		default:
			s.Log.Debug("simulated call skipped: the most calls are up", "max", most)
			continue
		}
		c := s.Customers[r.IntN(len(s.Customers))]
		var said []string
		audio := make([]int16, 0, 8000*per*4)
		if len(s.Scripts) > 0 && r.Float64() < s.ScriptShare {
			var err error
			if audio, said, err = s.Scripts[r.IntN(len(s.Scripts))].Audio(); err != nil {
				s.Log.Warn("simulated call skipped", "err", err)
				<-slots
				continue
			}
		} else {
			for i := range per {
				u := s.Utterances[r.IntN(len(s.Utterances))]
				if i > 0 {
					audio = append(audio, make([]int16, int(pause.Seconds()*8000))...)
				}
				audio = append(audio, u.PCM...)
				said = append(said, u.Text)
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			res, err := s.Dialer.Call(ctx, c.Phone, s.Hotline, audio, time.Second)
			switch {
			case err != nil && ctx.Err() == nil:
				s.Log.Warn("simulated customer could not call", "customer", c.ID, "status", res.Status, "err", err)
			case err == nil:
				s.Log.Debug("simulated customer called", "customer", c.ID, "said", said, "talk", res.Talk.Round(time.Millisecond),
					"rtp_sent", res.Sent, "hung_up_by", res.HungUpBy, "transferred_to", res.TransferredTo)
			}
		}()
	}
}

// CallScript is a named call: the catalogue utterances (services/sandbox/speech) a simulated
// caller says, in order, with Pause between them — long enough (> speech.FinalAfter) for a
// recogniser to end each sentence as its own segment.
type CallScript struct {
	Name       string
	Utterances []string
	Pause      time.Duration
}

// CallBankCardComplaint is the bank case's caller: a calm question about the credit-card bill
// (zh-card-bill: "你好，我想查一下我的信用卡账单。"), then, louder, higher and faster, the double
// charge (zh-double-charge-angry: "我的银行卡被扣了两次钱，你们到底怎么回事！") — the words and
// the raised voice a sentiment alert is made from.
var CallBankCardComplaint = CallScript{Name: "bank-card-complaint",
	Utterances: []string{"zh-card-bill", "zh-double-charge-angry"}, Pause: 1500 * time.Millisecond}

// CallScripts are the named calls, by name.
var CallScripts = map[string]CallScript{CallBankCardComplaint.Name: CallBankCardComplaint}

// Audio returns what the script's caller says: 8 kHz samples (half a second of silence first)
// and the catalogue texts, in order.
func (c CallScript) Audio() ([]int16, []string, error) {
	audio := make([]int16, 4000, 8000*12)
	var said []string
	for i, id := range c.Utterances {
		u, ok := speech.Find(id)
		if !ok {
			return nil, nil, fmt.Errorf("call script %s: no utterance %q in the speech catalogue", c.Name, id)
		}
		pcm, err := speech.Audio(id)
		if err != nil {
			return nil, nil, fmt.Errorf("call script %s: %w", c.Name, err)
		}
		if i > 0 {
			audio = append(audio, make([]int16, int(c.Pause.Seconds()*8000))...)
		}
		audio = append(audio, pcm...)
		said = append(said, u.Text)
	}
	return audio, said, nil
}

// Place makes one scripted call from the number from to the scenario's Hotline, and returns
// when it hung up (after a second of silence at the end), or ctx ended.
func (s *CallScenario) Place(ctx context.Context, from string, script CallScript) (caller.Call, error) {
	if s.Dialer == nil {
		return caller.Call{}, errors.New("call scenario: no dialer")
	}
	audio, _, err := script.Audio()
	if err != nil {
		return caller.Call{}, err
	}
	return s.Dialer.Call(ctx, from, s.Hotline, audio, time.Second)
}

// callScenario is the demo's phone traffic: the simulated customers calling the voice connector
// (cfg.CallTarget, else its VOICE_SIP_LISTEN) with the speech catalogue's audio, with the
// connector's digest credentials when it has some. nil when the connector's port is unknown
// (chosen at start); with SANDBOX_CALL_INTERVAL=0 it is built but not run, so that the admin
// API (callAPI) can still place calls.
func callScenario(cfg *Config, lookup config.Lookup, people []sim.Customer, log *slog.Logger) (*CallScenario, error) {
	get := func(k string) string {
		if lookup == nil {
			return ""
		}
		v, _ := lookup(k)
		return v
	}
	target := cfg.CallTarget
	if target == "" {
		target = get("VOICE_SIP_LISTEN")
	}
	if target == "" {
		target = "127.0.0.1:5060"
	}
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		return nil, fmt.Errorf("SANDBOX_CALL_TARGET %q: %w", target, err)
	}
	if port == "0" {
		log.Info("simulated calls off: the voice connector listens on a port chosen at start", "target", target)
		return nil, nil
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		target = net.JoinHostPort("127.0.0.1", port)
	}
	var utts []Utterance
	for _, u := range speech.Catalogue() {
		pcm, err := speech.Audio(u.ID)
		if err != nil {
			return nil, err
		}
		utts = append(utts, Utterance{Text: u.Text, PCM: pcm})
	}
	d, err := caller.New(caller.Config{Target: target, Username: get("VOICE_DIGEST_USER"), Password: get("VOICE_DIGEST_PASSWORD"), Log: log})
	if err != nil {
		return nil, err
	}
	// A quarter of the demo's calls are the bank-card caller who turns angry (words and voice).
	return &CallScenario{Dialer: d, Customers: people, Hotline: cfg.Hotline, Utterances: utts, Interval: cfg.CallInterval,
		Scripts: []CallScript{CallBankCardComplaint}, ScriptShare: 0.25, Seed: cfg.Seed, Log: log}, nil
}
