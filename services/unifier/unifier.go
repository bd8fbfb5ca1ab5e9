// Package unifier is the heart of omnibus: it merges every inbound event from every channel
// and every tool result into one customer identity and one conversation that follows the
// customer across channels, stored in Postgres, and re-emits the changes as agent-desk events.
//
// Lanes: live channel traffic, desk commands and tool results each have their own durable
// consumer, and bulk imports (omni.in.<channel>.backfill) have theirs, so a backfill never
// delays a customer's new message.
package unifier

import (
	"context"
	"fmt"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/services/unifier/internal/engine"
	"github.com/omnibus-dev/omnibus/services/unifier/internal/store"
)

// Config is read from the environment.
type Config struct {
	IdleTimeout   time.Duration `env:"UNIFIER_IDLE_TIMEOUT" default:"24h" desc:"an open conversation idle this long is closed; the next message opens a new one linked to it"`
	DefaultRegion string        `env:"UNIFIER_DEFAULT_REGION" default:"CN" desc:"region of phone numbers given without a country code"`
	BatchSize     int           `env:"UNIFIER_BATCH" default:"256" desc:"most events applied in one Postgres transaction"`
	SweepInterval time.Duration `env:"UNIFIER_SWEEP_INTERVAL" default:"1m" desc:"how often idle conversations are closed"`
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.BatchSize < 1 || c.BatchSize > 10000 {
		return fmt.Errorf("UNIFIER_BATCH must be between 1 and 10000, got %d", c.BatchSize)
	}
	if c.IdleTimeout < time.Minute {
		return fmt.Errorf("UNIFIER_IDLE_TIMEOUT must be at least 1m, got %s", c.IdleTimeout)
	}
	return nil
}

// Lanes: the consumers the unifier runs, by stream and filter.
var (
	LiveSubjects = []string{"omni.in.*.message", "omni.in.*.status", "omni.in.desk.conversation", "omni.in.desk.customer"}
	BulkSubjects = []string{"omni.in.*.backfill"}
	ToolSubjects = []string{"omni.tool.*.*.completed", "omni.tool.*.*.failed"}
)

// Service returns the unifier as a service.
func Service() service.Service {
	return service.Service{
		Name:    "unifier",
		NeedsDB: true,
		Config:  &Config{},
		Publishes: []service.Route{
			{Subject: engine.SubjectCRMLookup, Type: engine.TypeCRMLookupRequested},
			{Subject: engine.TypeDeskConversationOpened, Type: engine.TypeDeskConversationOpened},
			{Subject: engine.TypeDeskConversationUpdated, Type: engine.TypeDeskConversationUpdated},
			{Subject: engine.TypeDeskConversationClosed, Type: engine.TypeDeskConversationClosed},
			{Subject: engine.TypeDeskMessageAdded, Type: engine.TypeDeskMessageAdded},
			{Subject: engine.TypeDeskMessageUpdated, Type: engine.TypeDeskMessageUpdated},
			{Subject: engine.TypeDeskCustomerUpdated, Type: engine.TypeDeskCustomerUpdated},
			{Subject: engine.TypeDeskCustomerMerged, Type: engine.TypeDeskCustomerMerged},
			{Subject: engine.TypeDeskCustomerUnmerged, Type: engine.TypeDeskCustomerUnmerged},
			{Subject: engine.TypeDeskToolResult, Type: engine.TypeDeskToolResult},
		},
		Subscribes: []service.Route{
			{Subject: "omni.in.*.message", Type: engine.TypeMessageReceived},
			{Subject: "omni.in.*.backfill", Type: engine.TypeMessageReceived},
			{Subject: "omni.in.*.status", Type: engine.TypeStatusUpdated},
			{Subject: "omni.in.desk.conversation", Type: engine.TypeCloseRequested},
			{Subject: "omni.in.desk.conversation", Type: engine.TypeReopenRequested},
			{Subject: "omni.in.desk.customer", Type: engine.TypeUnmergeRequested},
			{Subject: "omni.tool.crm.lookup.completed", Type: engine.TypeCRMLookupCompleted},
			{Subject: "omni.tool.crm.lookup.failed", Type: engine.TypeCRMLookupFailed},
		},
		Run: Run,
	}
}

// Run runs the unifier until ctx is cancelled.
func Run(ctx context.Context, d service.Deps) error {
	var cfg Config
	if err := loadConfig(&cfg, d); err != nil {
		return err
	}
	if err := store.Migrate(ctx, d.DB.Config().ConnString()); err != nil {
		return err
	}
	log := d.Log
	en := engine.New(d.DB, engine.Config{IdleTimeout: cfg.IdleTimeout, DefaultRegion: cfg.DefaultRegion}, log)
	relay := engine.NewRelay(d.DB, d.Bus, log)
	en.Committed = relay.Wake
	relayDone := make(chan error, 1)
	rctx, stopRelay := context.WithCancel(context.WithoutCancel(ctx))
	go func() { relayDone <- relay.Run(rctx) }()

	handle := func(c context.Context, batch []bus.Delivery) []error { return en.ApplyBatch(c, batch) }
	lanes := []bus.ConsumerConfig{
		{Service: "unifier", Durable: "unifier-live", Stream: bus.StreamIn, FilterSubjects: LiveSubjects},
		{Service: "unifier", Durable: "unifier-bulk", Stream: bus.StreamIn, FilterSubjects: BulkSubjects},
		{Service: "unifier", Durable: "unifier-tool", Stream: bus.StreamTool, FilterSubjects: ToolSubjects},
	}
	var subs []*bus.Subscription
	stopAll := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		for _, s := range subs {
			_ = s.Shutdown(sctx)
		}
		stopRelay()
		<-relayDone
	}
	for _, lane := range lanes {
		s, err := d.Bus.SubscribeBatch(ctx, lane, cfg.BatchSize, handle)
		if err != nil {
			stopAll()
			return err
		}
		subs = append(subs, s)
	}
	log.Info("unifier running", "lanes", len(lanes), "idle_timeout", cfg.IdleTimeout, "batch", cfg.BatchSize)
	tick := time.NewTicker(cfg.SweepInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			stopAll()
			return nil
		case <-tick.C:
			if n, err := en.SweepIdle(ctx, time.Now()); err != nil {
				log.Warn("idle sweep failed", "err", err)
			} else if n > 0 {
				log.Info("idle conversations closed", "count", n)
			}
		}
	}
}
