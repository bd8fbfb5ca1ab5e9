package desk_test

import (
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/services/desk/internal/store"
)

// A conversation's summary reaches the desk on the unifier's conversation.updated and shows on
// the customer's past conversations; later events without one keep it, the summary of an older
// close does not replace it, and a desk rebuilt from the log has it too.
func TestPastConversationSummary(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(quiet()))
	d := startDesk(t, b, map[string]string{"DESK_ASSIGN": "false"})
	w := newWorld(t, b)
	w.customer("张伟", nil)
	closed1, closed2 := w.t0.Add(time.Minute), w.t0.Add(3*time.Minute)
	view := func(closed time.Time, sum map[string]any) map[string]any {
		v := w.convView(w.conv, w.cust, "closed", []string{"wechatkf"}, w.t0, closed)
		if sum != nil {
			v["summary"] = sum
		}
		return v
	}
	summary := func(text, source string, closed time.Time) map[string]any {
		s := map[string]any{"text": text, "source": source, "business_type": "logistics", "closed_at": closed,
			"event_id": "assist:summary:" + w.conv + ":" + closed.Format(time.RFC3339), "at": closed.Add(2 * time.Second)}
		if source == "llm" {
			s["model"] = "qwen-plus"
		}
		return s
	}
	updated := func(v map[string]any) {
		w.publish("omni.desk.conversation.updated", "omni.desk.conversation.updated", map[string]any{"conversation": v, "change": "summary added"},
			event.WithSubject(w.conv))
	}
	w.opened("wechatkf")
	w.publish("omni.desk.conversation.closed", "omni.desk.conversation.closed", map[string]any{"conversation": view(closed2, nil), "reason": "closed by agent"},
		event.WithSubject(w.conv))
	updated(view(closed2, summary("客户询问快递 SF1234567890123 的进度；坐席答复今日派送。", "llm", closed2)))
	updated(view(closed2, summary("older close", "rules", closed1))) // late: the summary of an earlier close
	w.publish("omni.desk.conversation.closed", "omni.desk.conversation.closed", map[string]any{"conversation": view(closed2, nil), "reason": "closed by agent"},
		event.WithSubject(w.conv), event.WithID("closed-again")) // a later event without a summary

	check := func(d interface {
		call(*testing.T, string, string, string, any, any) int
	}, token string) {
		t.Helper()
		var cu store.Customer
		bustest.WaitFor(t, 15*time.Second, "the summary on the customer's past conversation", func() bool {
			cu = store.Customer{}
			return d.call(t, token, "GET", "/api/customers/"+w.cust, nil, &cu) == 200 && len(cu.Conversations) == 1 &&
				cu.Conversations[0].Summary != nil && cu.Conversations[0].Summary.Source == "llm"
		})
		time.Sleep(300 * time.Millisecond) // the events after it are applied too
		var c store.Conversation
		d.call(t, token, "GET", "/api/conversations/"+w.conv, nil, &c)
		if s := c.Summary; s == nil || s.Source != "llm" || s.Model != "qwen-plus" || s.BusinessType != "logistics" ||
			!s.ClosedAt.Equal(closed2) || s.Text != "客户询问快递 SF1234567890123 的进度；坐席答复今日派送。" {
			t.Fatalf("conversation summary %+v", s)
		}
	}
	check(d, d.token)
	d2 := startDesk(t, b, map[string]string{"DESK_ASSIGN": "false", "DESK_CONSUMER": "desk2"})
	check(d2, d2.token)
}
