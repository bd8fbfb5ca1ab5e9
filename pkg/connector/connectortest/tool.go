package connectortest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/schema"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/pkg/service/servicetest"
)

// ToolHarness describes a tool connector under test: one that answers requests on
// omni.tool.<tool>.<op>.requested with .completed or .failed events, calling its vendor (the
// sandbox's, which Setup starts). A tool that answers another event (the sentiment connector
// scores omni.desk.message.added) runs the suite too: its Request returns that event and its
// subject, in whatever stream stores it; its answers are on OMNI_TOOL.
type ToolHarness struct {
	// Spec and Service are the connector's declaration and its service (connector.Define).
	Spec    connector.Spec
	Service service.Service
	// Setup starts what the connector calls (a sandbox vendor on httptest) and returns the
	// connector's environment pointing at it.
	Setup func(t *testing.T) map[string]string
	// Request returns a valid request n (distinct n → distinct request ids) and its subject.
	Request func(t *testing.T, n int) (subject string, e event.Event)
}

// answerTimeout bounds the wait for a tool's answers: generous, the suite is not a benchmark.
const answerTimeout = 20 * time.Second

// RunTool runs the conformance suite of tool connectors: every request is answered — with
// events declared in the spec, schema-valid, from the connector's source, carrying the request's
// id as their correlation id — a request delivered twice (a redelivery after a crash) adds no
// second answer, and the connector shuts down cleanly.
func RunTool(t *testing.T, h ToolHarness) {
	answers := func(t *testing.T, b *bustest.Bundle, req string) []event.Event {
		var out []event.Event
		for _, e := range b.Events(t, bus.StreamTool, "omni.tool.>") {
			if event.CorrelationID(e) == req && e.ID() != req && e.Source() == "/connectors/"+h.Spec.Name &&
				slices.ContainsFunc(h.Spec.Produces, func(r connector.Route) bool { return r.Type == e.Type() }) {
				out = append(out, e)
			}
		}
		return out
	}
	start := func(t *testing.T) (*bustest.Bundle, func()) {
		b := bustest.New(t, bus.WithLogger(quiet()))
		return b, servicetest.Run(t, h.Service, b.Client, nil, h.Setup(t))
	}
	publish := func(t *testing.T, b *bustest.Bundle, n int) event.Event {
		subject, e := h.Request(t, n)
		if err := b.Client.Publish(context.Background(), subject, e); err != nil {
			t.Fatalf("request %d: %v", n, err)
		}
		return e
	}

	t.Run("EveryRequestAnswered", func(t *testing.T) {
		t.Parallel()
		b, _ := start(t)
		var reqs []event.Event
		for n := 1; n <= 3; n++ {
			reqs = append(reqs, publish(t, b, n))
		}
		for _, req := range reqs {
			var got []event.Event
			bustest.WaitFor(t, answerTimeout, "the answer to "+req.ID(), func() bool {
				got = answers(t, b, req.ID())
				return len(got) > 0
			})
			for _, e := range got {
				if err := schema.Default().Validate(e.Type(), e.Data()); err != nil {
					t.Errorf("answer %s is not schema-valid: %v", e.ID(), err)
				}
				if e.DataSchema() == "" {
					t.Errorf("answer %s lacks dataschema", e.ID())
				}
			}
		}
	})
	t.Run("RedeliveredRequestAnsweredOnce", func(t *testing.T) {
		t.Parallel()
		b, _ := start(t)
		req := publish(t, b, 1)
		var first []event.Event
		bustest.WaitFor(t, answerTimeout, "the answer to "+req.ID(), func() bool {
			first = answers(t, b, req.ID())
			return len(first) > 0
		})
		// The same request again under another message id, as JetStream redelivers one whose ack
		// was lost: the connector handles it again, and its answers must be the same events.
		subject, _ := h.Request(t, 1)
		hdr, body, err := event.Encode(req)
		if err != nil {
			t.Fatal(err)
		}
		hdr.Set(jetstream.MsgIDHeader, "redelivery:"+req.ID())
		if _, err := b.Client.JetStream().PublishMsg(context.Background(), &nats.Msg{Subject: subject, Header: hdr, Data: body}); err != nil {
			t.Fatal(err)
		}
		bustest.WaitFor(t, answerTimeout, "the redelivered request handled", func() bool {
			stream, _ := bus.StreamOf(subject)
			info, err := b.Client.JetStream().Consumer(context.Background(), stream, consumerOf(t, b, subject))
			return err == nil && info.CachedInfo().NumAckPending == 0 && info.CachedInfo().NumPending == 0
		})
		if again := answers(t, b, req.ID()); len(again) != len(first) {
			t.Fatalf("a redelivered request was answered again: %d answers, %d before (answer ids must derive from the request)", len(again), len(first))
		}
	})
	t.Run("CleanShutdown", func(t *testing.T) {
		t.Parallel()
		b, stop := start(t)
		req := publish(t, b, 1)
		bustest.WaitFor(t, answerTimeout, "the answer to "+req.ID(), func() bool { return len(answers(t, b, req.ID())) > 0 })
		stop() // servicetest reports an error or a stop slower than 20 s
	})
}

// consumerOf returns the name of the durable consumer that receives subject, in the stream that
// stores it (OMNI_TOOL for requests; OMNI_DESK for a tool that answers desk events).
func consumerOf(t *testing.T, b *bustest.Bundle, subject string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, ok := bus.StreamOf(subject)
	if !ok {
		t.Fatalf("request subject %s is in no omnibus stream", subject)
	}
	st, err := b.Client.JetStream().Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	for ci := range st.ListConsumers(ctx).Info() {
		if ci.Config.Durable == "" {
			continue
		}
		filters := append(slices.Clone(ci.Config.FilterSubjects), ci.Config.FilterSubject)
		for _, f := range filters {
			if f != "" && bus.SubjectMatches(f, subject) {
				return ci.Config.Durable
			}
		}
	}
	t.Fatalf("no durable consumer of %s receives %s", stream, subject)
	return ""
}
