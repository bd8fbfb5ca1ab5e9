// Package unifier is the heart of omnibus: it merges every inbound event from every channel
// and every tool result into one customer identity and one conversation that follows the
// customer across channels, stored in Postgres, and re-emits the changes as agent-desk events.
//
// Lanes: live channel traffic, desk commands and tool results each have their own durable
// consumer, and bulk imports (omni.in.<channel>.backfill) have theirs, so a backfill never
// delays a customer's new message.
//
// Summaries: omni.tool.ai.summary.completed (the assist connector's summary of a conversation's
// close) is a tool result like the others — it goes on the timeline — and is also stored on its
// conversation (conversation_summaries), one per conversation: the summary of the latest close
// wins whatever order they arrive in (a summary of an older close never replaces one of a newer
// close; a redelivery or a replay changes nothing), and the desk hears of it through an
// omni.desk.conversation.updated whose conversation carries the summary.
package unifier

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/config"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/schemas"
	"github.com/omnibus-dev/omnibus/services/unifier/internal/engine"
	"github.com/omnibus-dev/omnibus/services/unifier/internal/store"
)

// Config is read from the environment.
type Config struct {
	IdleTimeout   time.Duration `env:"UNIFIER_IDLE_TIMEOUT" default:"24h" desc:"an open conversation idle this long is closed; the next message opens a new one linked to it"`
	DefaultRegion string        `env:"UNIFIER_DEFAULT_REGION" default:"CN" desc:"region of phone numbers given without a country code"`
	BatchSize     int           `env:"UNIFIER_BATCH" default:"256" desc:"most events a consumer takes at once; a run of inbound messages among them is applied in one Postgres transaction with a fixed number of statements"`
	Linger        time.Duration `env:"UNIFIER_LINGER" default:"0s" desc:"how long a live lane waits for more events when fewer than UNIFIER_BATCH are buffered, while events keep coming (not after a quiet spell): fewer, larger transactions when Postgres CPU is the limit, for at most that much latency; 0 = never wait"`
	SweepInterval time.Duration `env:"UNIFIER_SWEEP_INTERVAL" default:"1m" desc:"how often idle conversations are closed"`
	Replicas      int           `env:"UNIFIER_REPLICAS" default:"1" desc:"how many unifier replicas share OMNI_IN's partitions"`
	Replica       int           `env:"UNIFIER_REPLICA" default:"0" desc:"this replica's index, 0 to UNIFIER_REPLICAS-1"`
	Workers       int           `env:"UNIFIER_WORKERS" default:"0" desc:"live-lane consumers per replica, each owning a share of its partitions and applying its batches in order; 0 = one per CPU (GOMAXPROCS), at most the replica's partitions"`
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.BatchSize < 1 || c.BatchSize > 10000 {
		return fmt.Errorf("UNIFIER_BATCH must be between 1 and 10000, got %d", c.BatchSize)
	}
	if c.Replicas < 1 || c.Replicas > bus.InPartitions || c.Replica < 0 || c.Replica >= c.Replicas {
		return fmt.Errorf("UNIFIER_REPLICA (%d) must be in [0, UNIFIER_REPLICAS) and UNIFIER_REPLICAS (%d) in [1, %d]", c.Replica, c.Replicas, bus.InPartitions)
	}
	if c.Workers < 0 {
		return fmt.Errorf("UNIFIER_WORKERS must be >= 0, got %d", c.Workers)
	}
	if c.Workers == 0 {
		// One lane per CPU: more lanes than cores only splits the same work into smaller
		// transactions (on 2 cores, 4 lanes against 2: p99 ingest->desk 102 against 61 ms at
		// 1,000 events/s, and 3-8 % less throughput at full speed).
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.IdleTimeout < time.Minute {
		return fmt.Errorf("UNIFIER_IDLE_TIMEOUT must be at least 1m, got %s", c.IdleTimeout)
	}
	return nil
}

// Lanes: the consumers the unifier runs, by stream and filter. Inbound subjects carry a
// partition token (bus.PartitionedSubject); each replica owns the partitions p with
// p % UNIFIER_REPLICAS == UNIFIER_REPLICA and spreads them over UNIFIER_WORKERS consumers, so
// every identity's events are applied in order by exactly one consumer.
//
// Each lane's filter subjects are derived from the routes it consumes (consumed), which are also
// the service's declared Subscribes: what the unifier says it consumes is what its consumers
// take.
var (
	liveRoutes = []service.Route{
		{Subject: "omni.in.*.message", Type: engine.TypeMessageReceived},
		{Subject: "omni.in.*.status", Type: engine.TypeStatusUpdated},
		{Subject: "omni.in.desk.conversation", Type: engine.TypeCloseRequested},
		{Subject: "omni.in.desk.conversation", Type: engine.TypeReopenRequested},
		{Subject: "omni.in.desk.customer", Type: engine.TypeUnmergeRequested},
		{Subject: "omni.in.voice.call", Type: engine.TypeCallStarted},
		{Subject: "omni.in.voice.call", Type: engine.TypeCallAnswered},
		{Subject: "omni.in.voice.call", Type: engine.TypeCallEnded},
		{Subject: "omni.in.voice.transfer", Type: engine.TypeCallTransferred},
		{Subject: "omni.in.voice.transfer", Type: engine.TypeCallTransferFailed},
		{Subject: "omni.in.voice.transcription", Type: engine.TypeCallTranscribed},
		{Subject: "omni.in.voice.transcript", Type: engine.TypeSegment},
	}
	bulkRoutes = []service.Route{
		{Subject: "omni.in.*.backfill", Type: engine.TypeMessageReceived},
	}
	// Every tool result goes on its conversation's timeline (CRM results also enrich the
	// customer): the tool lane takes each omni.tool.<tool>.<op>.completed|failed type that has a
	// schema, on the subject of its name.
	toolRoutes = toolResults()

	LiveSubjects = subjects(liveRoutes)
	BulkSubjects = subjects(bulkRoutes)
	ToolSubjects = []string{"omni.tool.*.*.completed", "omni.tool.*.*.failed"}
)

// consumed is every route the unifier's lanes take: its declared Subscribes.
func consumed() []service.Route {
	return slices.Concat(liveRoutes, bulkRoutes, toolRoutes)
}

// subjects returns the distinct subjects of routes, in order.
func subjects(routes []service.Route) []string {
	var out []string
	for _, r := range routes {
		if !slices.Contains(out, r.Subject) {
			out = append(out, r.Subject)
		}
	}
	return out
}

// toolResults returns a route for every tool result type in schemas/, on the subject of its
// name.
func toolResults() []service.Route {
	var out []service.Route
	for _, typ := range slices.Concat(schemas.TypesMatching("omni.tool.*.*.completed"), schemas.TypesMatching("omni.tool.*.*.failed")) {
		out = append(out, service.Route{Subject: typ, Type: typ})
	}
	return out
}

// lanes returns the consumers of one replica.
func lanes(cfg Config) []bus.ConsumerConfig {
	var mine []int
	for p := 0; p < bus.InPartitions; p++ {
		if p%cfg.Replicas == cfg.Replica {
			mine = append(mine, p)
		}
	}
	workers := min(cfg.Workers, len(mine))
	live := make([][]int, workers)
	for i, p := range mine {
		live[i%workers] = append(live[i%workers], p)
	}
	var out []bus.ConsumerConfig
	consumer := func(lane string, parts []int, patterns []string) bus.ConsumerConfig {
		name := "unifier-" + lane
		var filters []string
		for _, p := range parts {
			name += fmt.Sprintf("-%d", p)
			filters = append(filters, bus.PartitionFilters(p, patterns...)...)
		}
		return bus.ConsumerConfig{Service: "unifier", Durable: name, Stream: bus.StreamIn, FilterSubjects: filters, Linger: cfg.Linger, KeepSealed: true}
	}
	for _, parts := range live {
		out = append(out, consumer("live", parts, LiveSubjects))
	}
	out = append(out, consumer("bulk", mine, BulkSubjects))
	// Tool results are not partitioned: the replicas share one queue consumer.
	out = append(out, bus.ConsumerConfig{Service: "unifier", Durable: "unifier-tool", Stream: bus.StreamTool, FilterSubjects: ToolSubjects, KeepSealed: true})
	return out
}

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
			{Subject: engine.TypeDeskCallRinging, Type: engine.TypeDeskCallRinging},
			{Subject: engine.TypeDeskCallUpdated, Type: engine.TypeDeskCallUpdated},
		},
		Subscribes: consumed(),

		Run: Run,
	}
}

// Run runs the unifier until ctx is cancelled.
func Run(ctx context.Context, d service.Deps) error {
	var cfg Config
	if err := config.Load(&cfg, d.Env); err != nil {
		return err
	}
	if err := store.Migrate(ctx, d.DB.Config().ConnString()); err != nil {
		return err
	}
	log := d.Log
	// Every consumer holds a connection for its batch's transaction; the relay and the sweep
	// need their own. A pool smaller than that makes consumers queue for connections.
	lanes := lanes(cfg)
	pcfg := d.DB.Config().Copy()
	if need := int32(len(lanes) + 2); pcfg.MaxConns < need {
		pcfg.MaxConns = need
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return fmt.Errorf("unifier pool: %w", err)
	}
	defer pool.Close()
	mp := d.Meter
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	met, err := newMetrics(mp, pool)
	if err != nil {
		return fmt.Errorf("unifier metrics: %w", err)
	}
	if d.PII != nil {
		n, err := store.SealClear(ctx, pool, d.PII)
		if err != nil {
			return fmt.Errorf("sealing the identities stored in clear: %w", err)
		}
		if n > 0 {
			log.Info("identities stored in clear sealed", "rows", n)
		}
	}
	en := engine.New(pool, engine.Config{IdleTimeout: cfg.IdleTimeout, DefaultRegion: cfg.DefaultRegion, PII: d.PII}, log)
	relay := engine.NewRelay(pool, d.Bus, log)
	en.Committed = relay.Wake
	relayDone := make(chan error, 1)
	rctx, stopRelay := context.WithCancel(context.WithoutCancel(ctx))
	go func() { relayDone <- relay.Run(rctx) }()

	handle := func(c context.Context, batch []bus.Delivery) []error { return en.ApplyBatch(c, batch) }
	var subs []*bus.Subscription
	stopAll := func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
		defer cancel()
		for _, s := range subs {
			_ = s.Shutdown(sctx)
		}
		stopRelay()
		if err := <-relayDone; err != nil {
			log.Warn("outbox relay: last flush failed; the rows stay for the next start", "err", err)
		}
	}
	for _, lane := range lanes {
		// A Postgres outage, however long, pauses the lane: its messages wait for the store
		// instead of running out their deliveries into the dead-letter queue.
		lane.Dependencies = append(lane.Dependencies, bus.Dependency{Name: "postgres", Check: pool.Ping})
		s, err := d.Bus.SubscribeBatch(ctx, lane, cfg.BatchSize, met.wrap(lane.Durable, handle))
		if err != nil {
			stopAll()
			return err
		}
		subs = append(subs, s)
	}
	log.Info("unifier running", "consumers", len(lanes), "replica", cfg.Replica, "replicas", cfg.Replicas,
		"idle_timeout", cfg.IdleTimeout, "batch", cfg.BatchSize)
	d.MarkStarted()
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
