package assist_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/services/assist"
)

type liveDelta struct {
	ConversationID string `json:"conversation_id"`
	AgentID        string `json:"agent_id"`
	Seq            int    `json:"seq"`
	Attempt        int    `json:"attempt"`
	Offset         int    `json:"offset"`
	Text           string `json:"text"`
}

// TestStreamsDeltas: while the model writes, the suggestion is published piece by piece on
// omni.live.ai.suggest.<request id> (core NATS, in no stream), personal data restored even where
// the vendor split a placeholder across chunks; the pieces add up to the completed suggestion,
// and the first arrives before the completed event is stored.
func TestStreamsDeltas(t *testing.T) {
	t.Parallel()
	tb := setup(t, nil)
	var (
		mu      sync.Mutex
		deltas  []liveDelta
		subject string
		first   time.Time
	)
	sub, err := tb.bus.Client.SubscribeLive(assist.RouteDelta.Subject, func(_ context.Context, subj string, e event.Event) {
		var d liveDelta
		if err := event.DecodeData(e, &d); err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if first.IsZero() {
			first = time.Now()
		}
		subject = subj
		if e.Type() != assist.TypeDelta || event.CorrelationID(e) != strings.TrimPrefix(subj, assist.SubjectLivePrefix) {
			t.Errorf("delta %s on %s, correlation %s", e.Type(), subj, event.CorrelationID(e))
		}
		deltas = append(deltas, d)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Stop() })
	if err := tb.bus.Conn.Flush(); err != nil {
		t.Fatal(err)
	}
	id := tb.request(t, turn{"customer", "退款打到卡 " + bankCard + "，我的手机 " + mobile})
	e := tb.answer(t, id)
	if e.Type() != assist.TypeCompleted {
		t.Fatalf("%s: %s", e.Type(), e.Data())
	}
	want := decode(t, e).Suggestions[0].Text
	var stored time.Time
	for _, m := range tb.bus.Events(t, bus.StreamTool, assist.SubjectCompleted) {
		if m.ID() == e.ID() {
			stored = m.Time()
		}
	}
	var text strings.Builder
	bustest.WaitFor(t, 5*time.Second, "every delta", func() bool {
		mu.Lock()
		defer mu.Unlock()
		text.Reset()
		for _, d := range deltas {
			text.WriteString(d.Text)
		}
		return text.String() == want
	})
	mu.Lock()
	defer mu.Unlock()
	if subject != assist.SubjectLivePrefix+id {
		t.Fatalf("subject %s", subject)
	}
	if len(deltas) < 3 {
		t.Fatalf("%d deltas: the suggestion was not streamed", len(deltas))
	}
	offset := 0
	for i, d := range deltas {
		if d.Seq != i+1 || d.Attempt != 1 || d.Offset != offset || d.ConversationID != convID || d.AgentID != "demo" {
			t.Fatalf("delta %d: %+v", i, d)
		}
		if strings.Contains(d.Text, "<PHONE_1>") || strings.Contains(d.Text, "<BANK_CARD_1>") {
			t.Fatalf("delta %d holds a placeholder: %q", i, d.Text)
		}
		offset += len([]rune(d.Text))
	}
	if !strings.Contains(want, bankCard) || !strings.Contains(want, mobile) {
		t.Fatalf("suggestion %q lost the restored data", want)
	}
	if !first.Before(stored) {
		t.Fatalf("first delta at %v, completed stored at %v", first, stored)
	}
	if n := tb.bus.StoredCount(t, bus.StreamTool, "omni.live.>"); n != 0 {
		t.Fatalf("%d live events stored", n)
	}
}
