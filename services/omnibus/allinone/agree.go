package allinone

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/service"
)

// The all-in-one keeps two kinds of state: the log — NATS JetStream's streams and the positions
// of the services' durable consumers — and the stores the services keep in Postgres. They belong
// together: a consumer acks a message once its effect is in the store, so a consumer that has
// acked messages against a store that lacks their effects loses them for good (it will not
// deliver them again). Before any service runs, agree compares the two and refuses to start when
// they disagree.
//
// The rule, from what each side can tell:
//
//   - The log's identity is the creation time of its OMNI_IN stream (the system of record the
//     stores are built from), as JetStream reports it; a NATS whose data was wiped or replaced
//     recreates the stream with a new time. It holds for the embedded NATS and for NATS_URL alike
//     and needs no file of its own.
//   - The database records, in table omnibus_binding, the identity of the log it was built from:
//     written at the first start on an empty database, and on every start of a database from
//     before the binding existed.
//   - The log has progress when a durable consumer of a service that keeps a database (named
//     after it: "unifier", "unifier-live-0-2", ...) has acked messages (ack floor > 0).
//   - The database is empty when it holds no table outside the system schemas but the binding.
//
// Then (decide): a binding naming another log is a disagreement (the NATS data was reset or
// replaced, or the URLs point at another pair). An empty database while the log has progress is
// one too (the database was wiped, or DATABASE_URL points at a new one). Unless a rebuild was
// asked for (--rebuild, OMNIBUS_REBUILD) and the database is empty, the all-in-one refuses,
// naming both sides and the ways out. A rebuild marks the binding "rebuilding", runs the Rebuild
// of every service that keeps a database and has one, and marks it bound; a binding left
// "rebuilding" (a rebuild that did not finish) is refused until the database is emptied and the
// rebuild run again. A database without a binding that is not empty (from before the binding
// existed) is bound as it is; an empty one without progress (the first start) is bound too. A
// rebuild asked for when the database is not empty is ignored, so OMNIBUS_REBUILD=true may stay
// set.
//
// Why not count rows instead (a consumer's ack floor against a service's processed events)? That
// needs each service's schema, which the all-in-one does not know: it composes services and stays
// generic. And why not a marker file in the NATS store? It would not exist with NATS_URL, and
// could be copied or kept apart from the streams; the stream's creation time is the streams'.

// ErrDisagree is returned, wrapped, by Run when the log (NATS) and the database (Postgres) do not
// belong together; the message says what disagrees and the ways out.
var ErrDisagree = errors.New("refusing to start: the log (NATS) and the database (Postgres) disagree")

// logStream is the stream whose creation time identifies the log.
const logStream = bus.StreamIn

// logState is what NATS says.
type logState struct {
	ID       string     // the log's identity: logStream@creation time
	Where    string     // the NATS store directory or URL, for messages
	Reset    string     // how to start over, for messages
	Progress []progress // durable consumers of services with a database that have acked messages
}

// progress is a durable consumer that has acked messages.
type progress struct {
	Service, Stream, Consumer string
	AckFloor                  uint64 // stream sequence
}

// storeState is what the database says.
type storeState struct {
	Where   string   // the data directory or the redacted URL, for messages
	Reset   string   // how to empty it, for messages
	Binding *binding // nil when the database was never bound
	Empty   bool     // no table outside the system schemas and the binding's
}

// binding is the database's record of the log it was built from.
type binding struct {
	LogID      string
	Rebuilding bool
	At         time.Time
}

// action is what the all-in-one does before its services start.
type action int

const (
	actStart   action = iota // the two agree
	actBind                  // record the binding (first start, or a database from before it)
	actRebuild               // rebuild the stores from the log, then record the binding
)

// decide applies the rule. rebuild is whether a rebuild was asked for; rebuildable names the
// services that have a Rebuild.
func decide(l logState, s storeState, rebuild bool, rebuildable []string) (action, error) {
	if s.Binding != nil && s.Binding.LogID != l.ID {
		if rebuild && s.Empty {
			return actRebuild, nil // nothing but the binding is left of the other log's stores
		}
		return 0, fmt.Errorf("%w.\n"+ //nolint:staticcheck // ST1005: a multi-line message for the operator, printed as is
			"  Postgres (%s) holds stores built from the log %s (bound %s),\n"+
			"  but NATS (%s) holds the log %s: NATS's data was reset or replaced, or NATS_URL / DATABASE_URL point at another pair.\n"+
			"Either\n"+
			"  - restore the NATS data this database belongs with; or\n"+
			"  - rebuild from this log into an empty database: %s, then start with --rebuild (or OMNIBUS_REBUILD=true); or\n"+
			"  - start over with both empty (the log: %s; the database: %s).",
			ErrDisagree, s.Where, s.Binding.LogID, s.Binding.At.UTC().Format(time.RFC3339), l.Where, l.ID, s.Reset, l.Reset, s.Reset)
	}
	if s.Binding != nil && s.Binding.Rebuilding {
		if rebuild && s.Empty {
			return actRebuild, nil
		}
		return 0, fmt.Errorf("%w.\n"+ //nolint:staticcheck // ST1005: a multi-line message for the operator, printed as is
			"  Postgres (%s): a rebuild from the log, begun %s, did not finish; its stores are partial.\n"+
			"Empty the database (%s) and start with --rebuild (or OMNIBUS_REBUILD=true) again.",
			ErrDisagree, s.Where, s.Binding.At.UTC().Format(time.RFC3339), s.Reset)
	}
	if s.Empty && (rebuild || len(l.Progress) > 0) {
		if rebuild {
			return actRebuild, nil
		}
		var with, without []string
		for _, name := range servicesOf(l.Progress) {
			if slices.Contains(rebuildable, name) {
				with = append(with, name)
			} else {
				without = append(without, name)
			}
		}
		what := "rebuilds " + strings.Join(with, ", ")
		switch {
		case len(with) == 0:
			what = "though none of them has a rebuild: they start on an empty store"
		case len(without) == 1:
			what += "; " + without[0] + " has no rebuild and starts on an empty store"
		case len(without) > 1:
			what += "; " + strings.Join(without, ", ") + " have no rebuild and start on an empty store"
		}
		return 0, fmt.Errorf("%w.\n"+ //nolint:staticcheck // ST1005: a multi-line message for the operator, printed as is
			"  NATS (%s): services that keep their state in the database have acked messages — %s.\n"+
			"  Postgres (%s): empty.\n"+
			"What those services built from the acked messages is gone, and their consumers will not deliver them again. Either\n"+
			"  - rebuild from the log: start with --rebuild (or OMNIBUS_REBUILD=true), which %s; or\n"+
			"  - reset: delete those services' durable consumers, so that they consume the log again from its start (nats consumer ls <stream>; nats consumer rm -f <stream> <consumer>), or start over: %s.",
			ErrDisagree, l.Where, describeProgress(l.Progress, rebuildable), s.Where, what, l.Reset)
	}
	if s.Binding == nil {
		return actBind, nil
	}
	return actStart, nil
}

// describeProgress summarises, service by service (those with a rebuild first), the consumers
// that have acked messages: how many, and how far on each stream.
func describeProgress(ps []progress, rebuildable []string) string {
	names := servicesOf(ps)
	slices.SortStableFunc(names, func(a, b string) int {
		return boolCmp(slices.Contains(rebuildable, b), slices.Contains(rebuildable, a))
	})
	var parts []string
	for _, name := range names {
		n := 0
		floors := map[string]uint64{}
		for _, p := range ps {
			if p.Service == name {
				n++
				floors[p.Stream] = max(floors[p.Stream], p.AckFloor)
			}
		}
		var streams []string
		for _, st := range slices.Sorted(maps.Keys(floors)) {
			streams = append(streams, fmt.Sprintf("%s #%d", st, floors[st]))
		}
		plural := "s"
		if n == 1 {
			plural = ""
		}
		parts = append(parts, fmt.Sprintf("%s (%d consumer%s, up to %s)", name, n, plural, strings.Join(streams, ", ")))
	}
	return strings.Join(parts, "; ")
}

// boolCmp orders false before true.
func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

func servicesOf(ps []progress) []string {
	var names []string
	for _, p := range ps {
		if !slices.Contains(names, p.Service) {
			names = append(names, p.Service)
		}
	}
	slices.Sort(names)
	return names
}

// withoutRebuild returns the services in ps that are not among rebuildable.
func withoutRebuild(ps []progress, rebuildable []string) []string {
	var out []string
	for _, name := range servicesOf(ps) {
		if !slices.Contains(rebuildable, name) {
			out = append(out, name)
		}
	}
	return out
}

// readLog reads the log's identity and the progress of the durable consumers of dbServices.
func readLog(ctx context.Context, js jetstream.JetStream, where, reset string, dbServices []string) (logState, error) {
	l := logState{Where: where, Reset: reset}
	st, err := js.Stream(ctx, logStream)
	if err != nil {
		return l, fmt.Errorf("log identity: stream %s: %w", logStream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return l, fmt.Errorf("log identity: stream %s: %w", logStream, err)
	}
	l.ID = logStream + "@" + info.Created.UTC().Format(time.RFC3339Nano)
	names := js.StreamNames(ctx)
	var streams []string
	for n := range names.Name() {
		streams = append(streams, n)
	}
	if err := names.Err(); err != nil {
		return l, fmt.Errorf("listing streams: %w", err)
	}
	slices.Sort(streams)
	for _, name := range streams {
		s, err := js.Stream(ctx, name)
		if err != nil {
			return l, fmt.Errorf("stream %s: %w", name, err)
		}
		cons := s.ListConsumers(ctx)
		for ci := range cons.Info() {
			if ci.Config.Durable == "" || ci.AckFloor.Stream == 0 {
				continue
			}
			if svc := ownerOf(ci.Name, dbServices); svc != "" {
				l.Progress = append(l.Progress, progress{Service: svc, Stream: name, Consumer: ci.Name, AckFloor: ci.AckFloor.Stream})
			}
		}
		if err := cons.Err(); err != nil {
			return l, fmt.Errorf("consumers of %s: %w", name, err)
		}
	}
	slices.SortFunc(l.Progress, func(a, b progress) int {
		return cmp.Or(strings.Compare(a.Service, b.Service), strings.Compare(a.Stream, b.Stream), strings.Compare(a.Consumer, b.Consumer))
	})
	return l, nil
}

// ownerOf returns the service among names that a durable consumer belongs to: it is named after
// the service, alone or followed by "-" (pkg/bus's default durable is the service's name).
func ownerOf(consumer string, names []string) string {
	for _, n := range names {
		if consumer == n || strings.HasPrefix(consumer, n+"-") {
			return n
		}
	}
	return ""
}

// bindingTable is where the database records the log it was built from. It lives beside the
// services' tables (the unqualified name follows the connection's search_path, as theirs do), so
// it needs no right they do not need.
const bindingTable = "omnibus_binding"

// readStore reads the binding and whether the database is empty.
func readStore(ctx context.Context, pool *pgxpool.Pool, s storeState) (storeState, error) {
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, bindingTable).Scan(&exists); err != nil {
		return s, fmt.Errorf("postgres: %w", err)
	}
	if exists {
		var b binding
		var state string
		err := pool.QueryRow(ctx, `SELECT log_id, state, at FROM `+bindingTable+` WHERE id = 1`).Scan(&b.LogID, &state, &b.At)
		switch {
		case err == nil:
			b.Rebuilding = state == "rebuilding"
			s.Binding = &b
		case !errors.Is(err, pgx.ErrNoRows):
			return s, fmt.Errorf("postgres: reading %s: %w", bindingTable, err)
		}
	}
	err := pool.QueryRow(ctx, `SELECT NOT EXISTS (
		SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p') AND c.relname <> $1
		  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
		  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%')`, bindingTable).Scan(&s.Empty)
	if err != nil {
		return s, fmt.Errorf("postgres: %w", err)
	}
	return s, nil
}

// writeBinding records that the database belongs with the log logID; rebuilding marks a rebuild
// in progress.
func writeBinding(ctx context.Context, pool *pgxpool.Pool, logID, nats string, rebuilding bool) error {
	state := "bound"
	if rebuilding {
		state = "rebuilding"
	}
	_, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+bindingTable+` (
		id    int PRIMARY KEY CHECK (id = 1),
		log_id text NOT NULL,
		nats  text NOT NULL,
		state text NOT NULL CHECK (state IN ('bound', 'rebuilding')),
		at    timestamptz NOT NULL
	)`)
	if err == nil {
		_, err = pool.Exec(ctx, `INSERT INTO `+bindingTable+` (id, log_id, nats, state, at) VALUES (1, $1, $2, $3, now())
			ON CONFLICT (id) DO UPDATE SET log_id = excluded.log_id, nats = excluded.nats, state = excluded.state, at = excluded.at`,
			logID, nats, state)
	}
	if err != nil {
		return fmt.Errorf("postgres: recording the log the database belongs with: %w", err)
	}
	return nil
}

// agree checks that the log and the database belong together, binding a new pair and rebuilding
// the stores when asked, before the services start. deps gives a service its dependencies for
// its Rebuild.
func agree(ctx context.Context, log *slog.Logger, js jetstream.JetStream, pool *pgxpool.Pool, nats logState, store storeState,
	svcs []service.Service, rebuild bool, deps func(service.Service) service.Deps) error {
	var dbServices, rebuildable []string
	for _, s := range svcs {
		if s.NeedsDB {
			dbServices = append(dbServices, s.Name)
			if s.Rebuild != nil {
				rebuildable = append(rebuildable, s.Name)
			}
		}
	}
	l, err := readLog(ctx, js, nats.Where, nats.Reset, dbServices)
	if err != nil {
		return err
	}
	s, err := readStore(ctx, pool, store)
	if err != nil {
		return err
	}
	act, err := decide(l, s, rebuild, rebuildable)
	if err != nil {
		return err
	}
	switch act {
	case actStart:
		if rebuild {
			log.Info("no rebuild: the database is not empty and belongs with the log (--rebuild / OMNIBUS_REBUILD ignored)", "log", l.ID)
		}
		return nil
	case actBind:
		if !s.Empty {
			log.Info("recording which log this database belongs with (a database from before the binding)", "log", l.ID)
		}
		return writeBinding(ctx, pool, l.ID, l.Where, false)
	}
	log.Warn("rebuilding the stores from the log", "log", l.ID, "nats", l.Where, "postgres", s.Where,
		"consumers_with_progress", len(l.Progress))
	if err := writeBinding(ctx, pool, l.ID, l.Where, true); err != nil {
		return err
	}
	for _, svc := range svcs {
		if !svc.NeedsDB || svc.Rebuild == nil {
			continue
		}
		begin := time.Now()
		if err := svc.Rebuild(ctx, deps(svc)); err != nil {
			return fmt.Errorf("rebuilding %s from the log: %w (the database is left partly rebuilt: empty it (%s) and start with --rebuild again)", svc.Name, err, s.Reset)
		}
		log.Debug("rebuilt from the log", "service", svc.Name, "took", time.Since(begin).Round(time.Millisecond))
	}
	if missed := withoutRebuild(l.Progress, rebuildable); len(missed) > 0 {
		log.Warn("these services have no rebuild from the log: they start on an empty store, and what they restore into it is up to them", "services", missed)
	}
	return writeBinding(ctx, pool, l.ID, l.Where, false)
}
