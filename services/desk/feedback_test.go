package desk_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/services/desk/internal/api"
	"github.com/omnibus-dev/omnibus/services/desk/internal/store"
)

// suggestion puts a completed AI suggestion on w's timeline (as the unifier does) and returns
// its event id.
func (w *world) suggestion(text, model, template string) string {
	w.t.Helper()
	req := uuid.NewString()
	id := "assist:suggest:" + req
	w.publish("omni.desk.tool.result", "omni.desk.tool.result", map[string]any{
		"event_id": id, "conversation_id": w.conv, "customer_id": w.cust, "tool": "ai", "op": "suggest", "outcome": "completed",
		"correlation_id": req, "at": time.Now().UTC(), "result": map[string]any{"conversation_id": w.conv, "provider": "bailian", "model": model,
			"suggestions": []map[string]string{{"text": text}},
			"provenance":  map[string]any{"provider": "bailian", "model": model, "prompt_template_id": template, "text": text}}},
		event.WithSubject(w.conv))
	return id
}

// TestSuggestionFeedback: a suggestion sent as it was is accepted, one sent changed is edited
// (with the edit distance), one rejected is rejected; each is an event with the suggestion's
// model and template, and the supervisors' analytics count them per model and template.
func TestSuggestionFeedback(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(quiet()))
	d := startDesk(t, b, map[string]string{"DESK_ASSIGN": "false"})
	w := newWorld(t, b)
	w.customer("李雷", nil)
	w.opened("wechatkf")
	s1 := w.suggestion("您好，重复扣款会在 1-3 个工作日内原路退回。", "qwen-plus", "assist.suggest.v2")
	s2 := w.suggestion("您好，包裹已在派送中。", "qwen-plus", "assist.suggest.v2")
	s3 := w.suggestion("您好，请提供订单号。", "qwen-plus", "assist.suggest.v2")
	s4 := w.suggestion("Hello, your refund is on its way.", "gpt-4o-mini", "assist.suggest.v1")
	path := "/api/conversations/" + w.conv + "/suggestions/feedback"
	bustest.WaitFor(t, 10*time.Second, "the suggestions on the desk", func() bool {
		return d.call(t, d.token, "POST", path, map[string]any{"suggestion_event_id": s4, "verdict": "rejected"}, nil) == 202
	})
	for _, tc := range []struct {
		id, verdict, text, want string
		distance                int
	}{
		{s1, "used", "您好，重复扣款会在 1-3 个工作日内原路退回。", "accepted", 0},
		{s2, "used", "您好，包裹已在派送中，今天送达。", "edited", 5},
		{s3, "rejected", "", "rejected", -1},
	} {
		var f store.Feedback
		if code := d.call(t, d.token, "POST", path, map[string]any{"suggestion_event_id": tc.id, "verdict": tc.verdict, "text": tc.text}, &f); code != 202 {
			t.Fatalf("%s: %d", tc.want, code)
		}
		if f.Verdict != tc.want || f.Model != "qwen-plus" || f.TemplateID != "assist.suggest.v2" || f.AgentID != "agent-li" ||
			(tc.distance >= 0 && (f.EditDistance == nil || *f.EditDistance != tc.distance)) || (tc.distance < 0 && f.EditDistance != nil) {
			t.Fatalf("%s: %+v", tc.want, f)
		}
	}
	for name, body := range map[string]map[string]any{
		"bad verdict":        {"suggestion_event_id": s1, "verdict": "liked"},
		"used without text":  {"suggestion_event_id": s1, "verdict": "used"},
		"unknown suggestion": {"suggestion_event_id": "assist:suggest:nope", "verdict": "rejected"},
	} {
		if code := d.call(t, d.token, "POST", path, body, nil); code != 400 && (name != "unknown suggestion" || code != 404) {
			t.Errorf("%s: %d", name, code)
		}
	}
	waitCount(t, b, bus.StreamTool, "omni.tool.ai.suggest.feedback", 4)
	last := dataOf(t, lastEvent(t, b, bus.StreamTool, "omni.tool.ai.suggest.feedback"))
	if last["verdict"] != "rejected" || last["suggestion_event_id"] != s3 || last["model"] != "qwen-plus" || last["prompt_template_id"] != "assist.suggest.v2" {
		t.Fatalf("feedback event %v", last)
	}

	if code := d.call(t, d.token, "GET", "/api/analytics/suggestions", nil, nil); code != 403 {
		t.Fatalf("an agent read the analytics: %d", code)
	}
	var an struct{ Rows []store.SuggestionStats }
	if code := d.call(t, d.super, "GET", "/api/analytics/suggestions?window=24h", nil, &an); code != 200 || len(an.Rows) != 2 {
		t.Fatalf("analytics: %d %+v", code, an)
	}
	q := an.Rows[0]
	if q.Model != "qwen-plus" || q.TemplateID != "assist.suggest.v2" || q.Suggestions != 3 || q.Accepted != 1 || q.Edited != 1 || q.Rejected != 1 ||
		q.AcceptanceRate < 0.66 || q.AcceptanceRate > 0.67 || q.MeanEditDistance != 2.5 {
		t.Fatalf("qwen-plus row %+v", q)
	}
	if g := an.Rows[1]; g.Model != "gpt-4o-mini" || g.Suggestions != 1 || g.Rejected != 1 || g.AcceptanceRate != 0 {
		t.Fatalf("gpt row %+v", g)
	}
	// A verdict recorded by another desk (only its event reaches this one) is projected too, and
	// as the suggestion's last verdict it is the one that counts.
	w.publish(api.SubjectSuggestFeedback, api.TypeSuggestFeedback, map[string]any{"conversation_id": w.conv, "suggestion_event_id": s4,
		"verdict": "accepted", "edit_distance": 0, "model": "gpt-4o-mini", "prompt_template_id": "assist.suggest.v1", "agent_id": "agent-zhang"},
		event.WithSubject(w.conv))
	bustest.WaitFor(t, 10*time.Second, "the projected verdict counted", func() bool {
		d.call(t, d.super, "GET", "/api/analytics/suggestions?window=24h", nil, &an)
		return len(an.Rows) == 2 && an.Rows[1].Accepted == 1 && an.Rows[1].Rejected == 0
	})
}
