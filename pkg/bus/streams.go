package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Stream names (DESIGN.md §3).
const (
	StreamIn    = "OMNI_IN"
	StreamOut   = "OMNI_OUT"
	StreamTool  = "OMNI_TOOL"
	StreamDesk  = "OMNI_DESK"
	StreamAudit = "OMNI_AUDIT"
	StreamDLQ   = "OMNI_DLQ"
	StreamOps   = "OMNI_OPS" // omni.ops.> operational alerts and dead-letter actions, 7 days
	// StreamRedrive is a work queue of dead letters handed back to the consumer that failed
	// them (omni.redrive.<consumer>, see Redrive).
	StreamRedrive = "OMNI_REDRIVE"
)

// SubjectDLQ returns the dead-letter subject of a service.
func SubjectDLQ(service string) string { return "omni.dlq." + service }

// StreamsConfig holds the tunables of the omnibus streams that configuration may set. A zero
// field is unset: Provision creates a missing stream with the default and leaves an existing
// stream's value as the server has it (an operator's `nats stream edit` survives restarts). A
// set field is applied to existing streams too; one that shortens a stream's retention is
// applied with a warning, never silently.
type StreamsConfig struct {
	Replicas int                   // default 1; 3 in a cluster
	Storage  jetstream.StorageType // at creation only (the server cannot change it); default file
	// MaxAge and MaxBytes by stream name (OMNI_IN, ...). Default ages: OMNI_IN 30 days (the
	// replay source), OMNI_TOOL, OMNI_DESK and OMNI_OPS 7 days, OMNI_AUDIT 180 days, OMNI_DLQ and
	// OMNI_REDRIVE 30 days; OMNI_OUT is a work queue without an age. Default size: unlimited.
	MaxAge          map[string]time.Duration
	MaxBytes        map[string]int64
	DuplicateWindow time.Duration // default 2 minutes
}

const day = 24 * time.Hour

// defaultMaxAge is each stream's retention when configuration does not set it.
var defaultMaxAge = map[string]time.Duration{
	StreamIn: 30 * day, StreamTool: 7 * day, StreamDesk: 7 * day, StreamAudit: 180 * day,
	StreamDLQ: 30 * day, StreamOps: 7 * day, StreamRedrive: 30 * day,
}

// Streams returns the omnibus stream definitions as Provision creates them: c's settings, the
// defaults where c leaves them unset.
func Streams(c StreamsConfig) []jetstream.StreamConfig {
	replicas, dup := c.Replicas, c.DuplicateWindow
	if replicas == 0 {
		replicas = 1
	}
	if dup == 0 {
		dup = 2 * time.Minute
	}
	mk := func(name, desc, subj string, ret jetstream.RetentionPolicy) jetstream.StreamConfig {
		age, ok := c.MaxAge[name]
		if !ok {
			age = defaultMaxAge[name]
		}
		maxBytes, ok := c.MaxBytes[name]
		if !ok || maxBytes == 0 {
			maxBytes = -1
		}
		return jetstream.StreamConfig{
			Name:        name,
			Description: desc,
			Subjects:    []string{subj},
			Retention:   ret,
			MaxAge:      age,
			MaxBytes:    maxBytes,
			Storage:     c.Storage,
			Replicas:    replicas,
			Duplicates:  dup,
			Discard:     jetstream.DiscardOld,
			// Client.PublishAtomic stores a batch with one write (nats-server 2.12+).
			AllowAtomicPublish: true,
		}
	}
	return []jetstream.StreamConfig{
		mk(StreamIn, "inbound channel events; the replay source", "omni.in.>", jetstream.LimitsPolicy),
		mk(StreamOut, "outbound commands to channel connectors", "omni.out.>", jetstream.WorkQueuePolicy),
		mk(StreamTool, "tool requests and results", "omni.tool.>", jetstream.LimitsPolicy),
		mk(StreamDesk, "agent-desk events", "omni.desk.>", jetstream.LimitsPolicy),
		mk(StreamAudit, "one masked record per third-party call", "omni.audit.>", jetstream.LimitsPolicy),
		mk(StreamDLQ, "dead letters with their reasons", "omni.dlq.>", jetstream.LimitsPolicy),
		mk(StreamOps, "operational alerts raised and resolved", "omni.ops.>", jetstream.LimitsPolicy),
		mk(StreamRedrive, "dead letters handed back to the consumer that failed them", "omni.redrive.>", jetstream.WorkQueuePolicy),
	}
}

// reconcile returns the update of existing stream cur that Provision applies, and whether one is
// needed: omnibus's own definition (subjects, retention policy, description, discard, atomic
// batches) always; the tunables only where c sets them, so an operator's edit of an unset one is
// kept. shorter names the retention a set tunable shortens.
func reconcile(cur, want jetstream.StreamConfig, c StreamsConfig) (next jetstream.StreamConfig, changed bool, shorter []string) {
	next = cur
	next.Subjects, next.Retention, next.Description = want.Subjects, want.Retention, want.Description
	next.Discard, next.AllowAtomicPublish = want.Discard, want.AllowAtomicPublish
	if c.Replicas != 0 {
		next.Replicas = c.Replicas
	}
	if c.DuplicateWindow != 0 {
		next.Duplicates = c.DuplicateWindow
	}
	if age, ok := c.MaxAge[cur.Name]; ok {
		if age != 0 && (cur.MaxAge == 0 || age < cur.MaxAge) {
			shorter = append(shorter, fmt.Sprintf("max age %s → %s", cur.MaxAge, age))
		}
		next.MaxAge = age
	}
	if b, ok := c.MaxBytes[cur.Name]; ok {
		if b == 0 {
			b = -1
		}
		if b > 0 && (cur.MaxBytes <= 0 || b < cur.MaxBytes) {
			shorter = append(shorter, fmt.Sprintf("max bytes %d → %d", cur.MaxBytes, b))
		}
		next.MaxBytes = b
	}
	changed = !slices.Equal(next.Subjects, cur.Subjects) || next.Retention != cur.Retention ||
		next.Description != cur.Description || next.Discard != cur.Discard ||
		next.AllowAtomicPublish != cur.AllowAtomicPublish || next.Replicas != cur.Replicas ||
		next.Duplicates != cur.Duplicates || next.MaxAge != cur.MaxAge || next.MaxBytes != cur.MaxBytes
	return next, changed, shorter
}

// StreamsEnv is the streams' configuration as the environment gives it; services embed it in
// their configuration and pass Config() to WithStreams.
type StreamsEnv struct {
	Replicas int    `env:"OMNIBUS_STREAM_REPLICAS" desc:"replicas of every omnibus stream (3 in a three-node cluster); unset: 1 for new streams, existing ones keep theirs"`
	Storage  string `env:"OMNIBUS_STREAM_STORAGE" default:"file" desc:"file or memory, for streams created from now on (a stream's storage cannot change)"`
	MaxAge   string `env:"OMNIBUS_STREAM_MAX_AGE" desc:"retention by stream, e.g. OMNI_DESK=14d,OMNI_IN=60d (units h, d); unset streams keep what the server has (an operator's edit) and are created with the defaults (OMNI_IN 30d, OMNI_TOOL/OMNI_DESK/OMNI_OPS 7d, OMNI_AUDIT 180d, OMNI_DLQ 30d); a shorter age than the stream has is applied with a warning"`
	MaxBytes string `env:"OMNIBUS_STREAM_MAX_BYTES" desc:"size cap by stream, e.g. OMNI_IN=50GB,OMNI_AUDIT=200GB (units KB, MB, GB, TB; 0 = unlimited); unset: unlimited for new streams, existing ones keep theirs"`
}

// Config parses e.
func (e StreamsEnv) Config() (StreamsConfig, error) {
	c := StreamsConfig{Replicas: e.Replicas}
	if e.Replicas < 0 || e.Replicas > 5 {
		return c, fmt.Errorf("OMNIBUS_STREAM_REPLICAS must be 1 to 5, got %d", e.Replicas)
	}
	switch strings.ToLower(strings.TrimSpace(e.Storage)) {
	case "", "file":
		c.Storage = jetstream.FileStorage
	case "memory":
		c.Storage = jetstream.MemoryStorage
	default:
		return c, fmt.Errorf("OMNIBUS_STREAM_STORAGE must be file or memory, got %q", e.Storage)
	}
	var err error
	if c.MaxAge, err = perStream("OMNIBUS_STREAM_MAX_AGE", e.MaxAge, parseAge); err != nil {
		return c, err
	}
	if c.MaxBytes, err = perStream("OMNIBUS_STREAM_MAX_BYTES", e.MaxBytes, parseBytes); err != nil {
		return c, err
	}
	return c, nil
}

// perStream parses "STREAM=value,..." with parse.
func perStream[T any](env, s string, parse func(string) (T, error)) (map[string]T, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	known := map[string]bool{}
	for _, sc := range Streams(StreamsConfig{}) {
		known[sc.Name] = true
	}
	out := map[string]T{}
	for _, kv := range strings.Split(s, ",") {
		name, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		name = strings.ToUpper(strings.TrimSpace(name))
		if !ok || !known[name] {
			return nil, fmt.Errorf("%s: %q is not STREAM=value with STREAM one of %s", env, kv, streamNames())
		}
		x, err := parse(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", env, name, err)
		}
		out[name] = x
	}
	return out, nil
}

// parseAge reads a duration, with "d" for days ("14d", "36h", "0" = no limit).
func parseAge(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 {
			return 0, fmt.Errorf("%q is not a number of days", s)
		}
		return time.Duration(days) * day, nil
	}
	if s == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration such as 14d or 36h", s)
	}
	return d, nil
}

// parseBytes reads a size with KB, MB, GB or TB (powers of 1024), or bytes.
func parseBytes(s string) (int64, error) {
	u := strings.ToUpper(s)
	mult := int64(1)
	for _, x := range []struct {
		suffix string
		m      int64
	}{{"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"B", 1}} {
		if n, ok := strings.CutSuffix(u, x.suffix); ok {
			u, mult = strings.TrimSpace(n), x.m
			break
		}
	}
	n, err := strconv.ParseInt(u, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size such as 50GB", s)
	}
	return n * mult, nil
}

// StreamOf returns the omnibus stream whose subjects hold subject, a subject or a subject pattern
// under one stream's prefix ("omni.tool.crm.>" is in OMNI_TOOL); ok is false when no stream of
// Streams holds it. It is derived from Streams, the one place a stream's subjects are written.
func StreamOf(subject string) (stream string, ok bool) {
	for _, s := range streamPrefixes {
		if strings.HasPrefix(subject, s.prefix) {
			return s.stream, true
		}
	}
	return "", false
}

// streamPrefixes are the subject prefixes of Streams, each with its stream.
var streamPrefixes = func() []struct{ prefix, stream string } {
	var out []struct{ prefix, stream string }
	for _, sc := range Streams(StreamsConfig{}) {
		for _, subj := range sc.Subjects {
			out = append(out, struct{ prefix, stream string }{strings.TrimSuffix(subj, ">"), sc.Name})
		}
	}
	return out
}()

// streamNames lists the names of Streams, for messages.
func streamNames() string {
	var names []string
	for _, sc := range Streams(StreamsConfig{}) {
		names = append(names, sc.Name)
	}
	return strings.Join(names, ", ")
}

// StreamAdmin provisions the omnibus streams.
type StreamAdmin interface {
	// Provision creates or updates every omnibus stream; it is idempotent.
	Provision(ctx context.Context) error
}

// Provision creates the omnibus streams that do not exist and reconciles those that do (see
// StreamsConfig: what configuration leaves unset, the server keeps). It is safe to call from
// every service at start. Attempts the server answers late (still recovering its streams, a
// loaded machine) are repeated, for up to 30 s per stream unless ctx says otherwise.
func (c *Client) Provision(ctx context.Context) error {
	cfg := c.opts.streams
	for _, want := range Streams(cfg) {
		err := retryAdmin(ctx, c.opts.timeout, func(ctx context.Context) error {
			st, err := c.js.Stream(ctx, want.Name)
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				_, err = c.js.CreateStream(ctx, want)
				return err
			}
			if err != nil {
				return err
			}
			cur := st.CachedInfo().Config
			if cfg.Storage != cur.Storage && c.opts.streamsSet {
				c.opts.log.Warn("stream storage differs from configuration and cannot change; kept", "stream", want.Name,
					"has", cur.Storage.String(), "configured", cfg.Storage.String())
			}
			next, changed, shorter := reconcile(cur, want, cfg)
			if !changed {
				return nil
			}
			if len(shorter) > 0 {
				c.opts.log.Warn("configuration shortens a stream's retention: messages beyond it will be removed",
					"stream", want.Name, "changes", strings.Join(shorter, ", "))
			}
			_, err = c.js.UpdateStream(ctx, next)
			return err
		})
		if err != nil {
			return fmt.Errorf("provision stream %s: %w", want.Name, err)
		}
	}
	return nil
}

// requireStreams waits until every omnibus stream exists (WithoutProvision): a service whose
// NATS user may not create streams starts before the administrator has provisioned them, and
// says what it waits for.
func (c *Client) requireStreams(ctx context.Context) error {
	for _, want := range Streams(c.opts.streams) {
		var told time.Time
		for {
			err := retryAdmin(ctx, c.opts.timeout, func(ctx context.Context) error {
				_, err := c.js.Stream(ctx, want.Name)
				return err
			})
			if err == nil {
				break
			}
			if !errors.Is(err, jetstream.ErrStreamNotFound) {
				return fmt.Errorf("stream %s: %w", want.Name, err)
			}
			if time.Since(told) > 30*time.Second {
				c.opts.log.Warn("waiting for the omnibus streams: the administrator provisions them (omnibus nats provision)", "stream", want.Name)
				told = time.Now()
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("stream %s does not exist: the administrator provisions the streams (omnibus nats provision): %w", want.Name, ctx.Err())
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}

var _ StreamAdmin = (*Client)(nil)
