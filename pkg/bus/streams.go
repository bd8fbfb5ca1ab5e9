package bus

import (
	"context"
	"fmt"
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
	StreamOps   = "OMNI_OPS" // omni.ops.> operational alerts, 7 days
	// StreamRedrive is a work queue of dead letters handed back to the consumer that failed
	// them (omni.redrive.<consumer>, see Redrive).
	StreamRedrive = "OMNI_REDRIVE"
)

// SubjectDLQ returns the dead-letter subject of a service.
func SubjectDLQ(service string) string { return "omni.dlq." + service }

// StreamsConfig holds the tunables of the omnibus streams. Zero fields take the defaults shown.
type StreamsConfig struct {
	Replicas        int                   // default 1; 3 in a cluster
	Storage         jetstream.StorageType // default file
	InMaxAge        time.Duration         // default 30 days (the replay source)
	ToolMaxAge      time.Duration         // default 7 days
	DeskMaxAge      time.Duration         // default 7 days
	AuditMaxAge     time.Duration         // default 180 days
	DLQMaxAge       time.Duration         // default 30 days
	DuplicateWindow time.Duration         // default 2 minutes
}

const day = 24 * time.Hour

func (c *StreamsConfig) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	def(&c.InMaxAge, 30*day)
	def(&c.ToolMaxAge, 7*day)
	def(&c.DeskMaxAge, 7*day)
	def(&c.AuditMaxAge, 180*day)
	def(&c.DLQMaxAge, 30*day)
	def(&c.DuplicateWindow, 2*time.Minute)
}

// Streams returns the omnibus stream definitions.
func Streams(c StreamsConfig) []jetstream.StreamConfig {
	c.setDefaults()
	mk := func(name, desc, subj string, ret jetstream.RetentionPolicy, age time.Duration) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name:        name,
			Description: desc,
			Subjects:    []string{subj},
			Retention:   ret,
			MaxAge:      age,
			Storage:     c.Storage,
			Replicas:    c.Replicas,
			Duplicates:  c.DuplicateWindow,
			Discard:     jetstream.DiscardOld,
			// Client.PublishAtomic stores a batch with one write (nats-server 2.12+).
			AllowAtomicPublish: true,
		}
	}
	return []jetstream.StreamConfig{
		mk(StreamIn, "inbound channel events; the replay source", "omni.in.>", jetstream.LimitsPolicy, c.InMaxAge),
		mk(StreamOut, "outbound commands to channel connectors", "omni.out.>", jetstream.WorkQueuePolicy, 0),
		mk(StreamTool, "tool requests and results", "omni.tool.>", jetstream.LimitsPolicy, c.ToolMaxAge),
		mk(StreamDesk, "agent-desk events", "omni.desk.>", jetstream.LimitsPolicy, c.DeskMaxAge),
		mk(StreamAudit, "one masked record per third-party call", "omni.audit.>", jetstream.LimitsPolicy, c.AuditMaxAge),
		mk(StreamDLQ, "dead letters with their reasons", "omni.dlq.>", jetstream.LimitsPolicy, c.DLQMaxAge),
		mk(StreamOps, "operational alerts raised and resolved", "omni.ops.>", jetstream.LimitsPolicy, 7*day),
		mk(StreamRedrive, "dead letters handed back to the consumer that failed them", "omni.redrive.>", jetstream.WorkQueuePolicy, c.DLQMaxAge),
	}
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

// Provision creates or updates every stream of Streams(c.streams). It is safe to call from every
// service at start. Attempts the server answers late (still recovering its streams, a loaded
// machine) are repeated, for up to 30 s per stream unless ctx says otherwise.
func (c *Client) Provision(ctx context.Context) error {
	for _, sc := range Streams(c.opts.streams) {
		err := retryAdmin(ctx, c.opts.timeout, func(ctx context.Context) error {
			_, err := c.js.CreateOrUpdateStream(ctx, sc)
			return err
		})
		if err != nil {
			return fmt.Errorf("provision stream %s: %w", sc.Name, err)
		}
	}
	return nil
}

var _ StreamAdmin = (*Client)(nil)
