// Package sandbox is the vendors, simulated: every vendor API the connectors call, on the same
// paths with the same shapes, error codes and signature checks, mounted under /sandbox/<vendor>/,
// with per-route fault injection (SANDBOX_FAULTS and the admin API under /sandbox/_admin/) and a
// record of every call a connector made. It is also the customers: a scenario makes a simulated
// population write on WeChat, SMS and web chat, reusing their phone numbers across channels, as
// the vendors would deliver it (signed callbacks, messages to pull, uplink pushes, WebSocket).
//
// It runs inside the all-in-one binary, or on its own (cmd/sandbox) for docker-compose, in which
// case the connectors' *_API_BASE variables point at it.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/config"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

// Config is the sandbox's own configuration; each simulator reads its credentials too (see
// vendors.go).
type Config struct {
	Faults    string        `env:"SANDBOX_FAULTS" desc:"fault table, JSON: {\"wecom kf/send_msg\": {\"latency\": \"200ms\", \"error_ratio\": 0.2, \"code\": \"45009\"}}; also PUT /sandbox/_admin/faults/<vendor> <op>"`
	Records   int           `env:"SANDBOX_RECORDS" default:"10000" desc:"outbound calls kept for GET /sandbox/_admin/records"`
	HookBase  string        `env:"SANDBOX_HOOK_BASE" default:"http://127.0.0.1:8080/hooks" desc:"where the connectors' webhooks are (vendor callbacks go there); {connector} is replaced by the connector's name"`
	AppBase   string        `env:"SANDBOX_APP_BASE" default:"http://127.0.0.1:8080" desc:"where the connectors' other endpoints are (the web chat WebSocket)"`
	Customers int           `env:"SANDBOX_CUSTOMERS" default:"40" desc:"size of the simulated customer population"`
	Interval  time.Duration `env:"SANDBOX_SCENARIO_INTERVAL" default:"3s" desc:"how often a simulated customer writes; 0 stops the scenario"`
	Seed      int64         `env:"SANDBOX_SEED" default:"1" desc:"seed of the simulated population and scenario"`
	// Simulated customers also phone the hotline (calls.go).
	CallInterval time.Duration `env:"SANDBOX_CALL_INTERVAL" default:"40s" desc:"how often a simulated customer phones the hotline, saying catalogue sentences the simulated ASR recognises; 0 stops these scheduled calls (POST /sandbox/_admin/customers/{id}/call still places one)"`
	CallTarget   string        `env:"SANDBOX_CALL_TARGET" desc:"SIP host:port the simulated customers call (the voice connector); default the voice connector's VOICE_SIP_LISTEN (127.0.0.1:5060); a port 0 there turns the calls off"`
	Hotline      string        `env:"SANDBOX_HOTLINE" default:"4008001234" desc:"the number the simulated customers call"`
	// And the simulated Tencent Cloud Contact Center reports calls it took (sandbox/tccc).
	Base             string        `env:"SANDBOX_BASE" default:"http://127.0.0.1:8080" desc:"where the connectors (and the simulated vendors) reach the sandbox: the simulated TCCC's recording links start with it"`
	TCCCCallInterval time.Duration `env:"SANDBOX_TCCC_CALL_INTERVAL" default:"60s" desc:"how often the simulated Tencent Cloud Contact Center takes a call and pushes its records to the voice connector (every fourth call's CDR push is lost, for reconciliation to find; every fifth ends in voicemail); 0 stops them"`

	// SalesforceHidden simulates an org without some Contact fields (salesforce.Config.HiddenFields).
	SalesforceHidden []string `env:"SANDBOX_SALESFORCE_HIDDEN_FIELDS" desc:"Contact fields the simulated Salesforce org does not have or does not let the connector read, e.g. VIP_Level__c: left out of the describe, refused by queries (the crm connector's start check names them)"`

	OpenAIChunkDelay time.Duration `env:"SANDBOX_OPENAI_CHUNK_DELAY" default:"60ms" desc:"pause before each streamed piece (8 characters) of the simulated model's reply, so suggestions arrive as a model writes them; 0 sends the whole reply at once"`
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.Customers < 1 {
		return errors.New("SANDBOX_CUSTOMERS must be >= 1")
	}
	if c.OpenAIChunkDelay < 0 || c.OpenAIChunkDelay > 5*time.Second {
		return errors.New("SANDBOX_OPENAI_CHUNK_DELAY must be within 0-5s")
	}
	if c.Interval < 0 {
		return errors.New("SANDBOX_SCENARIO_INTERVAL must be >= 0")
	}
	if c.CallInterval < 0 {
		return errors.New("SANDBOX_CALL_INTERVAL must be >= 0")
	}
	if c.TCCCCallInterval < 0 {
		return errors.New("SANDBOX_TCCC_CALL_INTERVAL must be >= 0")
	}
	if _, err := sim.ParseFaults(c.Faults); err != nil {
		return fmt.Errorf("SANDBOX_FAULTS: %w", err)
	}
	return nil
}

// Service returns the sandbox as a service. It needs no bus and no database.
func Service() service.Service {
	return service.Service{
		Name:  "sandbox",
		NoBus: true,
		// The connectors' start checks call it: in one process it is up before they start.
		First:  true,
		Config: new(Config),
		Run: func(ctx context.Context, d service.Deps) error {
			cfg := new(Config)
			if err := config.Load(cfg, d.Env); err != nil {
				return fmt.Errorf("sandbox config: %w", err)
			}
			faults, _ := sim.ParseFaults(cfg.Faults) // checked by Validate
			env := sim.NewEnv(d.Mux, cfg.HookBase, faults, cfg.Records, d.Log)
			channels, err := mountVendors(ctx, env, cfg, d.Env)
			if err != nil {
				return err
			}
			people := sim.Population(cfg.Customers, uint64(cfg.Seed))
			customerAPI(d.Mux, people, channels)
			d.Log.Info("sandbox up", "vendors", vendorNames(), "channels", len(channels), "faults", len(faults),
				"admin", "/sandbox/_admin/{faults,records,routes,customers}")
			calls, err := callScenario(cfg, d.Env, people, d.Log)
			if err != nil {
				return err
			}
			var wg sync.WaitGroup
			callAPI(ctx, d.Mux, calls, people, &wg)
			d.MarkStarted()
			if calls != nil {
				// Closed after every call, the scenario's and the admin API's, hung up.
				defer func() { _ = calls.Dialer.Close() }()
			}
			if calls != nil && calls.Interval > 0 {
				wg.Go(func() {
					if err := calls.Run(ctx); err != nil {
						d.Log.Warn("simulated calls stopped", "err", err)
					}
				})
			}
			defer wg.Wait()
			if cfg.Interval == 0 || len(channels) == 0 {
				<-ctx.Done()
				return nil
			}
			sc := &Scenario{Customers: people, Channels: channels,
				Interval: cfg.Interval, Seed: cfg.Seed, Log: d.Log}
			return sc.Run(ctx)
		},
	}
}
