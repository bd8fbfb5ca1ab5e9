// Package desk is the agent workbench of omnibus: a web UI and an HTTP API over its own read
// model, fed by the event log.
//
// The desk projects omni.desk.> (conversations, messages and their delivery statuses, customers
// and merges, tool results, and its own assignment and agent events), the sender identities of
// inbound messages (so replies can be addressed), tool requests, CRM identities, audit records
// and ops alerts into the Postgres schema "desk". Every page and API answer is served from there;
// a lost store is rebuilt by replaying the log. Agent actions become events: a reply is an
// omni.channel.message.send.requested on omni.out.<channel>.message.send, a tool button an
// omni.tool.<tool>.<op>.requested, close/reopen an omni.in.desk.conversation command, hang-up,
// transfer and prompt of a call omni.out.voice.call.hangup|transfer|prompt commands (with the
// agent who asked), and every
// assignment an omni.desk.assignment.changed. The workbench is live: each change the projection
// commits is pushed to open pages over Server-Sent Events, and so are the pieces of an AI
// suggestion as the model writes them (omni.live.ai.suggest.*, core NATS), to the agent who asked
// only. The desk also owns the knowledge base AI suggestions are grounded in (source data, not a
// projection), and counts the agents' verdicts on suggestions.
//
// Routes on the shared mux: "/" (the workbench), "/kb" (the knowledge base), "/analytics"
// (suggestion acceptance), "/ops" (vendor routes and dead letters; a supervisor's redrive or
// discard is an omni.ops.dlq.action), "/api/..." (the API,
// OAuth2 bearer tokens), "/desk/assets/...", "/desk/login", and, with DESK_DEV_LOGIN=true,
// "/desk/dev/..." (the development issuer and its login).
package desk

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnibus-dev/omnibus/pkg/auth"
	"github.com/omnibus-dev/omnibus/pkg/blobstore"
	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/canary"
	"github.com/omnibus-dev/omnibus/pkg/config"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/schemas"
	"github.com/omnibus-dev/omnibus/services/desk/internal/api"
	"github.com/omnibus-dev/omnibus/services/desk/internal/assign"
	"github.com/omnibus-dev/omnibus/services/desk/internal/hub"
	"github.com/omnibus-dev/omnibus/services/desk/internal/kb"
	"github.com/omnibus-dev/omnibus/services/desk/internal/project"
	"github.com/omnibus-dev/omnibus/services/desk/internal/store"
	"github.com/omnibus-dev/omnibus/services/desk/internal/web"

	_ "gocloud.dev/blob/s3blob" // s3:// recording buckets (AWS S3, Aliyun OSS, MinIO)
)

// Service returns the desk as a service.
func Service() service.Service {
	return service.Service{
		Name:    "desk",
		NeedsDB: true,
		Config:  &Config{},
		Publishes: []service.Route{
			{Subject: "omni.out.*.message.send", Type: api.TypeSendRequested},
			{Subject: api.SubjectConversation, Type: api.TypeCloseRequested},
			{Subject: api.SubjectConversation, Type: api.TypeReopenRequested},
			{Subject: "omni.tool.logistics.route.requested", Type: schemas.TypeToolLogisticsRouteRequested},
			{Subject: "omni.tool.ticket.create.requested", Type: schemas.TypeToolTicketCreateRequested},
			{Subject: "omni.tool.payment.link.requested", Type: schemas.TypeToolPaymentLinkRequested},
			{Subject: "omni.tool.ai.suggest.requested", Type: schemas.TypeToolAiSuggestRequested},
			{Subject: api.SubjectSuggestFeedback, Type: api.TypeSuggestFeedback},
			{Subject: assign.SubjectAssignment, Type: assign.TypeAssignmentChanged},
			{Subject: api.SubjectAgentUpdated, Type: api.TypeAgentUpdated},
			{Subject: api.SubjectDLQAction, Type: api.TypeDLQAction},
			{Subject: api.SubjectCallHangup, Type: api.TypeCallHangup},
			{Subject: api.SubjectCallTrans, Type: api.TypeCallTransfer},
			{Subject: api.SubjectCallPrompt, Type: api.TypeCallPrompt},
			{Subject: api.SubjectNoteAdded, Type: api.TypeNoteAdded},
			{Subject: api.SubjectCannedSaved, Type: api.TypeCannedSaved},
			{Subject: api.SubjectCannedDeleted, Type: api.TypeCannedDeleted},
		},
		Subscribes: append([]service.Route{
			{Subject: project.TypeConversationOpened, Type: project.TypeConversationOpened},
			{Subject: project.TypeConversationUpdated, Type: project.TypeConversationUpdated},
			{Subject: project.TypeConversationClosed, Type: project.TypeConversationClosed},
			{Subject: project.TypeMessageAdded, Type: project.TypeMessageAdded},
			{Subject: project.TypeMessageUpdated, Type: project.TypeMessageUpdated},
			{Subject: project.TypeCustomerUpdated, Type: project.TypeCustomerUpdated},
			{Subject: project.TypeCustomerMerged, Type: project.TypeCustomerMerged},
			{Subject: project.TypeCustomerUnmerged, Type: project.TypeCustomerUnmerged},
			{Subject: project.TypeToolResult, Type: project.TypeToolResult},
			{Subject: project.TypeCallRinging, Type: project.TypeCallRinging},
			{Subject: project.TypeCallUpdated, Type: project.TypeCallUpdated},
			{Subject: assign.SubjectAssignment, Type: assign.TypeAssignmentChanged},
			{Subject: api.SubjectAgentUpdated, Type: api.TypeAgentUpdated},
			{Subject: api.SubjectNoteAdded, Type: api.TypeNoteAdded},
			{Subject: api.SubjectCannedSaved, Type: api.TypeCannedSaved},
			{Subject: api.SubjectCannedDeleted, Type: api.TypeCannedDeleted},
			{Subject: "omni.in.*.message", Type: project.TypeMessageReceived},
			{Subject: "omni.in.*.backfill", Type: project.TypeMessageReceived},
			{Subject: "omni.tool.crm.lookup.completed", Type: project.TypeCRMLookupCompleted},
			{Subject: project.TypeSuggestFeedback, Type: project.TypeSuggestFeedback},
			{Subject: project.TypePaymentStatusChanged, Type: project.TypePaymentStatusChanged},
			{Subject: "omni.audit.*", Type: project.TypeAuditCallRecorded},
			{Subject: "omni.ops.alert.raised", Type: project.TypeOpsAlertRaised},
			{Subject: "omni.ops.alert.resolved", Type: project.TypeOpsAlertResolved},
			{Subject: canary.SubjectStarted, Type: project.TypeCanaryStarted},
			{Subject: canary.SubjectChanged, Type: project.TypeCanaryChanged},
			{Subject: canary.SubjectRolledBack, Type: project.TypeCanaryRolledBack},
			{Subject: canary.SubjectEnded, Type: project.TypeCanaryEnded},
			{Subject: canary.SubjectMeasured, Type: project.TypeCanaryMeasured},
			{Subject: project.TypeSentimentScored, Type: project.TypeSentimentScored},
			{Subject: project.TypeSentimentAlertRaised, Type: project.TypeSentimentAlertRaised},
			{Subject: project.TypeSentimentAlertCleared, Type: project.TypeSentimentAlertCleared},
			{Subject: SubjectSuggestDelta, Type: TypeSuggestDelta},
		}, toolRequests()...),
		Run: Run,
	}
}

// toolRequests is every tool request type in schemas/, on the subject of its name: the desk
// shows a request on the timeline until its result comes (whoever asked).
func toolRequests() []service.Route {
	var out []service.Route
	for _, typ := range schemas.TypesMatching("omni.tool.*.*.requested") {
		out = append(out, service.Route{Subject: typ, Type: typ})
	}
	return out
}

// consumers returns the desk's durable consumers; the first is the projection of OMNI_DESK.
func consumers(prefix string) []bus.ConsumerConfig {
	return []bus.ConsumerConfig{
		{Service: "desk", Durable: prefix, Stream: bus.StreamDesk, FilterSubjects: []string{"omni.desk.>"}},
		{Service: "desk", Durable: prefix + "-in", Stream: bus.StreamIn, FilterSubjects: []string{"omni.in.*.message", "omni.in.*.backfill"}, Concurrency: 4},
		{Service: "desk", Durable: prefix + "-tool", Stream: bus.StreamTool, FilterSubjects: []string{"omni.tool.*.*.requested", "omni.tool.crm.lookup.completed", project.TypeSuggestFeedback, project.TypePaymentStatusChanged}},
		{Service: "desk", Durable: prefix + "-audit", Stream: bus.StreamAudit, FilterSubjects: []string{"omni.audit.>"}, Concurrency: 4},
		{Service: "desk", Durable: prefix + "-alerts", Stream: bus.StreamOps, FilterSubjects: []string{"omni.ops.alert.>"}},
		{Service: "desk", Durable: prefix + "-sentiment", Stream: bus.StreamTool, FilterSubjects: []string{project.SubjectSentiment}},
		{Service: "desk", Durable: prefix + "-canary", Stream: bus.StreamOps, FilterSubjects: project.CanarySubjects},
	}
}

// Run runs the desk until ctx is cancelled.
func Run(ctx context.Context, d service.Deps) error {
	err := run(ctx, d)
	if service.StoppedWhileStarting(ctx, err) {
		return nil
	}
	return err
}

func run(ctx context.Context, d service.Deps) error {
	var cfg Config
	if err := config.Load(&cfg, d.Env); err != nil {
		return err
	}
	log := d.Log
	if err := store.Migrate(ctx, d.DB.Config().ConnString()); err != nil {
		return err
	}
	st := store.New(d.DB)
	st.SealWith(d.PII)
	if n, err := st.SealAddresses(ctx); err != nil {
		return fmt.Errorf("sealing the reply addresses kept in clear: %w", err)
	} else if n > 0 {
		log.Info("reply addresses kept in clear sealed", "values", n)
	}
	js := d.Bus.JetStream()
	cons := consumers(cfg.Consumer)
	if err := prepareStore(ctx, st, js, cons, cfg.Rebuild, log); err != nil {
		return err
	}
	if cfg.KBSeed {
		if seeded, err := st.SeedArticles(ctx, kb.Seeds()); err != nil {
			return fmt.Errorf("seed the knowledge base: %w", err)
		} else if seeded {
			log.Info("knowledge base seeded with the demo articles", "articles", len(kb.Seeds()))
		}
	}
	seeds, _ := cfg.SeedAgents()
	for _, a := range seeds {
		if err := st.SeedAgent(ctx, a); err != nil {
			return fmt.Errorf("seed agent %s: %w", a.ID, err)
		}
	}

	verifier, dev, err := verifier(cfg, log)
	if err != nil {
		return err
	}
	h := hub.New()
	assigner := assign.NewAssigner(st, d.Bus, log)
	proj := &project.Projector{Store: st, Hub: h, Log: log}
	if cfg.Assign {
		proj.Kick = assigner.Kick
	}
	assigner.Notify = func(a store.AssignmentChanged) {
		proj.NotifyConversation(context.WithoutCancel(ctx), assign.TypeAssignmentChanged, a.ConversationID)
	}
	caught, err := newCaughtUp(ctx, js, cons[0])
	if err != nil {
		return err
	}
	assigner.CaughtUp = caught

	a := &api.API{Store: st, Bus: d.Bus, Hub: h, Assigner: assigner, Verifier: verifier, Log: log,
		Notify: proj.NotifyConversation, Schemas: d.Bus.Schemas(), Done: ctx.Done(), DeadLetters: d.Bus, Limit: d.Guard.Token("desk/api"), CloseNotice: cfg.CloseNotice}
	if d.Health != nil { // the process's: the connectors it runs without (the all-in-one)
		a.Disabled = d.Health.Disabled
	}
	if cfg.RecordingBucket != "" {
		b, base, err := blobstore.Open(ctx, cfg.RecordingBucket)
		if err != nil {
			return fmt.Errorf("DESK_RECORDING_BUCKET %q: %w", cfg.RecordingBucket, err)
		}
		defer func() { _ = b.Close() }()
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		a.Recordings = &api.Recordings{Bucket: b, Base: base, Key: key, TTL: cfg.RecordingTTL}
	}
	a.Mount(d.Mux)
	autoChannels, _ := cfg.AutoChannels()
	auto := &autoSuggester{ctx: ctx, channels: autoChannels, quiet: cfg.AIAutoQuiet, live: caught, suggest: a.AutoSuggest, log: log,
		timers: map[string]*time.Timer{}}
	defer auto.stop()
	if len(autoChannels) > 0 {
		proj.OnInbound = auto.inbound
	}
	w := &web.Web{Store: st, Verifier: verifier, Dev: dev, DevTTL: cfg.DevTokenTTL, CookieSecure: cfg.CookieSecure, Log: log}
	w.Mount(d.Mux)

	handlers := []bus.Handler{proj.HandleDesk, proj.HandleInbound, proj.HandleTool, proj.HandleAudit, proj.HandleOpsAlert, proj.HandleSentiment, proj.HandleCanary}
	// A store outage pauses the consumers instead of dead-lettering what arrives meanwhile.
	for i := range cons {
		cons[i].Dependencies = append(cons[i].Dependencies, bus.Dependency{Name: "postgres", Check: st.Ping})
	}
	var subs []*bus.Subscription
	relay, err := relaySuggestions(d.Bus, h, log)
	if err != nil {
		return err
	}
	stop := func() {
		_ = relay.Stop()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
		defer cancel()
		for _, s := range subs {
			_ = s.Shutdown(sctx)
		}
	}
	pending := map[int]bool{}
	for i, c := range cons {
		s, err := d.Bus.Subscribe(ctx, c, handlers[i])
		if err != nil {
			if c.Stream == bus.StreamOps && errors.Is(err, jetstream.ErrStreamNotFound) {
				pending[i] = true // a server provisioned before OMNI_OPS existed: subscribed once it does
				continue
			}
			stop()
			return err
		}
		subs = append(subs, s)
	}
	d.Health.AddCheck("desk-store", st.Ping)
	log.Info("desk running", "url", cfg.PublicURL, "issuer", issuerOf(cfg, dev), "dev_login", cfg.DevLogin,
		"agents_seeded", len(seeds), "assign", cfg.Assign)
	d.MarkStarted()
	if cfg.Assign {
		go assigner.Run(ctx, cfg.AssignEvery)
		assigner.Kick()
		if cfg.AutoClose > 0 {
			go autoClose(ctx, st, d.Bus, a.SendCloseNotice, cfg.AutoClose, cfg.AssignEvery, log)
		}
	}
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			stop()
			return nil
		case <-tick.C:
			if n, err := st.PruneVendorCalls(ctx, time.Now().Add(-cfg.AuditKeep)); err != nil {
				log.Warn("pruning audit rows failed", "err", err)
			} else if n > 0 {
				log.Debug("audit rows pruned", "count", n)
			}
			for i := range pending {
				s, err := d.Bus.Subscribe(ctx, cons[i], handlers[i])
				if err != nil {
					continue
				}
				subs = append(subs, s)
				delete(pending, i)
				log.Info("ops stream found; subscribed", "stream", cons[i].Stream, "consumer", cons[i].Durable)
			}
		}
	}
}

// verifier returns the token verifier: the development issuer's (DESK_DEV_LOGIN) or the
// configured OpenID Connect issuer's.
func verifier(cfg Config, log *slog.Logger) (*auth.Verifier, *auth.DevIssuer, error) {
	ac := auth.Config{Issuer: cfg.OIDCIssuer, Audience: cfg.OIDCAudience, JWKSURL: cfg.JWKSURL, AgentClaim: cfg.AgentClaim, RolesClaim: cfg.RolesClaim}
	if !cfg.DevLogin {
		v, err := auth.NewVerifier(ac)
		return v, nil, err
	}
	dev, err := auth.NewDevIssuer(cfg.PublicURL+auth.DevPath, cfg.OIDCAudience)
	if err != nil {
		return nil, nil, err
	}
	ac.Issuer = dev.Issuer()
	v, err := auth.NewStaticVerifier(ac, dev.JWKS())
	if err != nil {
		return nil, nil, err
	}
	log.Warn("DESK_DEV_LOGIN=true: the DEVELOPMENT issuer is running and anyone who reaches "+cfg.PublicURL+"/desk/dev/login can sign in as any agent. Never enable it in production.",
		"issuer", dev.Issuer(), "jwks", dev.Issuer()+"/jwks.json")
	return v, dev, nil
}

func issuerOf(cfg Config, dev *auth.DevIssuer) string {
	if dev != nil {
		return dev.Issuer()
	}
	return cfg.OIDCIssuer
}

// prepareStore makes a new (or lost, or DESK_REBUILD) store replay the log from the start: it
// empties it and deletes the desk's durable consumers, which are then created anew and deliver
// every stored event.
func prepareStore(ctx context.Context, st *store.Store, js jetstream.JetStream, cons []bus.ConsumerConfig, rebuild bool, log *slog.Logger) error {
	fresh, err := st.Claim(ctx)
	if err != nil {
		return err
	}
	if !fresh && !rebuild {
		return nil
	}
	if rebuild {
		if err := st.Reset(ctx); err != nil {
			return fmt.Errorf("desk rebuild: %w", err)
		}
	}
	for _, c := range cons {
		err := js.DeleteConsumer(ctx, c.Stream, c.Durable)
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("desk rebuild: consumer %s: %w", c.Durable, err)
		}
	}
	log.Info("desk store is new or rebuilt: replaying the log into it", "rebuild", rebuild)
	return nil
}

// newCaughtUp returns a check that reports whether the projection has applied everything
// OMNI_DESK held when the desk started (the history: replaying it must not trigger new
// decisions). Once true it stays true: live traffic keeps a few events in flight at any time.
func newCaughtUp(ctx context.Context, js jetstream.JetStream, c bus.ConsumerConfig) (func(context.Context) bool, error) {
	st, err := js.Stream(ctx, c.Stream)
	if err != nil {
		return nil, fmt.Errorf("desk: stream %s: %w", c.Stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("desk: stream %s: %w", c.Stream, err)
	}
	history := info.State.LastSeq
	var done atomic.Bool
	return func(ctx context.Context) bool {
		if done.Load() || history == 0 {
			return true
		}
		cons, err := js.Consumer(ctx, c.Stream, c.Durable)
		if err != nil {
			return false
		}
		ci, err := cons.Info(ctx)
		if err != nil {
			return false
		}
		if ci.AckFloor.Stream >= history || ci.NumPending == 0 && ci.NumAckPending == 0 {
			done.Store(true)
		}
		return done.Load()
	}, nil
}
