package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/schema"
	"github.com/omnibus-dev/omnibus/services/unifier/internal/engine"
)

// A summary of a conversation's close is stored on it and announced to the desk with a valid
// omni.desk.conversation.updated; a redelivery changes nothing; the summary of an older close
// never replaces the one of a newer close, whichever comes first; a summary of an unknown
// conversation fails permanently.
func TestSummaryStoredOnConversation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.apply(t, msg(t, "sms:1", "sms", t0, phone))
	conv := b.strings(t, `SELECT id::text FROM conversations`)[0]
	closed1 := t0.Add(5 * time.Minute)
	b.apply(t, command(t, "desk:close-1", engine.TypeCloseRequested, closed1, map[string]any{"conversation_id": conv}),
		command(t, "desk:reopen-1", engine.TypeReopenRequested, t0.Add(6*time.Minute), map[string]any{"conversation_id": conv}))
	closed2 := t0.Add(7 * time.Minute)
	b.apply(t, command(t, "desk:close-2", engine.TypeCloseRequested, closed2, map[string]any{"conversation_id": conv}))

	updated := func() []string {
		return b.strings(t, `SELECT data::text FROM outbox WHERE type = $1 AND data->'conversation'->'summary' IS NOT NULL ORDER BY id`, engine.TypeDeskConversationUpdated)
	}
	stored := func() string {
		s := b.strings(t, `SELECT event_id FROM conversation_summaries WHERE conversation_id::text = $1`, conv)
		if len(s) != 1 {
			return ""
		}
		return s[0]
	}
	newer := summary(t, conv, closed2, closed2.Add(10*time.Second), "llm")
	older := summary(t, conv, closed1, closed2.Add(20*time.Second), "rules")
	b.apply(t, newer)
	if got := stored(); got != newer.Event.ID() {
		t.Fatalf("stored summary %q, want %q", got, newer.Event.ID())
	}
	ups := updated()
	if len(ups) != 1 {
		t.Fatalf("conversation.updated with a summary: %d, want 1", len(ups))
	}
	if err := schema.Default().Validate(engine.TypeDeskConversationUpdated, []byte(ups[0])); err != nil {
		t.Fatalf("conversation.updated: %v\n%s", err, ups[0])
	}
	before := b.count(t, `SELECT count(*) FROM outbox`)
	b.apply(t, newer) // redelivered
	b.apply(t, older) // the summary of the close before: arrives late
	if got := stored(); got != newer.Event.ID() {
		t.Fatalf("stored summary %q after an older one, want %q", got, newer.Event.ID())
	}
	if n := len(updated()); n != 1 {
		t.Fatalf("conversation.updated with a summary: %d, want 1", n)
	}
	// The older one still goes on the timeline (one tool result), nothing else.
	if n := b.count(t, `SELECT count(*) FROM outbox`); n != before+1 {
		t.Fatalf("outbox: %d rows after a redelivery and an older summary, want %d", n, before+1)
	}

	// The other order: the older first, then the newer replaces it.
	b2 := setup(t)
	b2.apply(t, msg(t, "sms:1", "sms", t0, phone))
	conv2 := b2.strings(t, `SELECT id::text FROM conversations`)[0]
	b2.apply(t, summary(t, conv2, closed1, closed1, "rules"), summary(t, conv2, closed2, closed2, "llm"))
	if got := b2.strings(t, `SELECT source FROM conversation_summaries`); len(got) != 1 || got[0] != "llm" {
		t.Fatalf("stored: %v, want the llm summary of the later close", got)
	}
	// The conversation is open (as after a reopen): its updates carry the open view, valid too.
	for _, data := range b2.strings(t, `SELECT data::text FROM outbox WHERE type = $1`, engine.TypeDeskConversationUpdated) {
		if err := schema.Default().Validate(engine.TypeDeskConversationUpdated, []byte(data)); err != nil {
			t.Fatalf("conversation.updated of an open conversation: %v\n%s", err, data)
		}
	}
	if n := b2.count(t, `SELECT count(*) FROM outbox WHERE type = $1`, engine.TypeDeskConversationUpdated); n != 2 {
		t.Fatalf("conversation.updated: %d, want 2 (each summary replaced the one before)", n)
	}

	errs := b.en.ApplyBatch(ctx, []bus.Delivery{summary(t, "0190a3b2-7c4d-7e5f-8a9b-0c1d2e3f4a5b", closed1, closed1, "rules")})
	if len(errs) != 1 || !bus.IsPermanent(errs[0]) {
		t.Fatalf("summary of an unknown conversation: %v, want a permanent error", errs)
	}
}
