package desk_test

import (
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/services/desk/internal/store"
)

// sentimentEvent publishes what the sentiment connector publishes for a message.
func (w *world) sentimentEvent(typ, kind, msgID string, data map[string]any) {
	w.t.Helper()
	data["conversation_id"], data["customer_id"], data["message_id"] = w.conv, w.cust, msgID
	e, err := event.New(typ, "/connectors/sentiment", data, event.WithID("sentiment:"+kind+":"+msgID), event.WithSubject(w.conv))
	if err != nil {
		w.t.Fatal(err)
	}
	if err := w.b.Client.Publish(w.t.Context(), typ, e); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) scored(msgID, label string, score float64, negative bool) {
	w.t.Helper()
	w.sentimentEvent("omni.tool.ai.sentiment.scored", "scored", msgID, map[string]any{"channel": "wechatkf", "label": label, "score": score,
		"confidence": 0.9, "negative_episode": negative, "provenance": map[string]any{"provider": "builtin", "model": "pkg/sentiment",
			"version": "lexicon-0123456789ab", "latency_ms": 0, "input_event_ids": []string{msgID}, "fallback_from": "tencent", "fallback_reason": "timeout"}})
}

type timelineView struct {
	Items     []map[string]any               `json:"items"`
	Sentiment map[string]store.SentimentMark `json:"sentiment"`
	Alert     *store.Alert                   `json:"sentiment_alert"`
}

// TestSentimentAlert: the sentiment connector's events on the desk. A score marks its message on
// the timeline; a raised alert shows a banner on the conversation's timeline to its assigned
// agent and to supervisors (not to other agents), lists it in their alerts and marks the
// conversation negative in the inbox; redelivered events change nothing; the episode's cleared
// event takes the banner down.
func TestSentimentAlert(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(quiet()))
	d := startDesk(t, b, map[string]string{"DESK_ASSIGN": "false"})
	w := newWorld(t, b)
	w.opened("wechatkf")
	m1 := w.inbound("wechatkf", "wechat_openid", "oWx-1", "你们这服务太差了，再不解决我就要投诉！！", w.t0.Add(time.Second), "wechatkf")
	bustest.WaitFor(t, 15*time.Second, "the conversation assigned to agent-li", func() bool { // once the desk has it
		return d.call(t, d.super, "POST", "/api/conversations/"+w.conv+"/assign", map[string]string{"agent_id": "agent-li"}, nil) == 200
	})
	w.scored(m1, "negative", -0.97, true)
	w.sentimentEvent("omni.tool.ai.sentiment.alert.raised", "raised", m1, map[string]any{"episode": 1, "mean_score": -0.97,
		"label": "negative", "escalation": true, "provider": "builtin", "input_event_ids": []string{"sentiment:scored:" + m1, m1}})

	var tl timelineView
	bustest.WaitFor(t, 15*time.Second, "the banner on the agent's timeline", func() bool {
		d.call(t, d.token, "GET", "/api/conversations/"+w.conv+"/timeline", nil, &tl)
		return tl.Alert != nil
	})
	if tl.Alert.Kind != "sentiment" || tl.Alert.ID != "sentiment:raised:"+m1 || tl.Alert.Title != store.SentimentAlertTitle {
		t.Fatalf("alert %+v", tl.Alert)
	}
	if m, ok := tl.Sentiment[m1]; !ok || m.Label != "negative" || m.Provider != "builtin" || m.FallbackFrom != "tencent" || !m.Negative {
		t.Fatalf("marks %+v", tl.Sentiment)
	}
	var alerts struct{ Alerts []store.Alert }
	for _, who := range []string{d.token, d.super} {
		d.call(t, who, "GET", "/api/alerts", nil, &alerts)
		if len(alerts.Alerts) != 1 || alerts.Alerts[0].ConversationID != w.conv {
			t.Fatalf("alerts %+v", alerts)
		}
	}
	// Another agent sees neither the banner nor the alert.
	other := d.idp.token(t, "agent-zhao", []string{"agent"}, nil)
	d.call(t, other, "GET", "/api/conversations/"+w.conv+"/timeline", nil, &tl)
	d.call(t, other, "GET", "/api/alerts", nil, &alerts)
	if tl.Alert != nil || len(alerts.Alerts) != 0 {
		t.Fatalf("another agent sees %+v / %+v", tl.Alert, alerts.Alerts)
	}
	var c store.Conversation
	d.call(t, d.token, "GET", "/api/conversations/"+w.conv, nil, &c)
	if c.Sentiment != "negative" {
		t.Fatalf("inbox mark %q", c.Sentiment)
	}

	// An AI suggestion that reads the mood as neutral does not end the connector's episode.
	w.toolResult("ai", "suggest", "completed", "c1", map[string]any{"provider": "bailian", "suggestions": []any{},
		"sentiment": map[string]any{"label": "neutral"}}, w.t0.Add(1500*time.Millisecond))
	bustest.WaitFor(t, 15*time.Second, "the AI result on the timeline", func() bool {
		d.call(t, d.token, "GET", "/api/conversations/"+w.conv+"/timeline", nil, &tl)
		for _, it := range tl.Items {
			if it["kind"] == "tool_result" {
				return true
			}
		}
		return false
	})
	if tl.Alert == nil {
		t.Fatal("a neutral AI suggestion took the episode's banner down")
	}

	// Redelivered: nothing changes.
	w.sentimentEvent("omni.tool.ai.sentiment.alert.raised", "raised", m1, map[string]any{"episode": 1, "mean_score": -0.97,
		"input_event_ids": []string{m1}})
	m2 := w.inbound("wechatkf", "wechat_openid", "oWx-1", "退款收到了，谢谢你们，非常满意", w.t0.Add(2*time.Second), "wechatkf")
	w.scored(m2, "positive", 0.92, false)
	w.sentimentEvent("omni.tool.ai.sentiment.alert.cleared", "cleared", m2, map[string]any{"episode": 1, "mean_score": -0.02,
		"label": "positive", "escalation": false, "provider": "builtin", "input_event_ids": []string{"sentiment:scored:" + m2, m2}})
	bustest.WaitFor(t, 15*time.Second, "the banner cleared", func() bool {
		d.call(t, d.token, "GET", "/api/conversations/"+w.conv+"/timeline", nil, &tl)
		return tl.Alert == nil && len(tl.Sentiment) == 2
	})
	d.call(t, d.super, "GET", "/api/alerts", nil, &alerts)
	d.call(t, d.token, "GET", "/api/conversations/"+w.conv, nil, &c)
	if len(alerts.Alerts) != 0 || c.Sentiment != "positive" {
		t.Fatalf("after clearing: alerts %+v, sentiment %q", alerts.Alerts, c.Sentiment)
	}
	all, err := d.store.Alerts(t.Context(), false, 50)
	if err != nil || len(all) != 1 || all[0].ResolvedAt == nil {
		t.Fatalf("alert rows %+v (%v), want the one episode's, resolved", all, err)
	}
}
