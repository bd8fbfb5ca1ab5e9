package desk_test

import (
	"strings"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/services/desk/internal/api"
)

// Canned responses: an agent's own and the shared ones (supervisors write those), her own
// first when both have a shortcut, checked on the way in, and filled in for a conversation with
// the customer's name, hers and the latest order number.
func TestCannedResponses(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(quiet()))
	d := startDesk(t, b, map[string]string{"DESK_ASSIGN": "false"})
	w := newWorld(t, b)
	w.customer("韩梅梅", nil)
	w.opened("wechatkf")
	bustest.WaitFor(t, 10*time.Second, "the conversation on the desk", func() bool {
		return d.call(t, d.token, "GET", "/api/conversations/"+w.conv, nil, nil) == 200
	})

	var own api.CannedItem
	if code := d.call(t, d.token, "POST", "/api/canned", map[string]any{"shortcut": "bye", "title": "Goodbye",
		"text": "Thanks {{customer.name}}! — {{ agent.name }}"}, &own); code != 202 || own.Owner != "agent-li" || own.Shared {
		t.Fatalf("own: %d %+v", code, own)
	}
	for name, c := range map[string]struct {
		token string
		body  map[string]any
		want  int
	}{
		"shared by an agent":  {d.token, map[string]any{"shortcut": "x", "title": "x", "text": "x", "shared": true}, 403},
		"her shortcut again":  {d.token, map[string]any{"shortcut": "bye", "title": "x", "text": "x"}, 409},
		"bad shortcut":        {d.token, map[string]any{"shortcut": "Bye Now", "title": "x", "text": "x"}, 400},
		"unknown variable":    {d.token, map[string]any{"shortcut": "v", "title": "x", "text": "hi {{customer.phone}}"}, 400},
		"empty text":          {d.token, map[string]any{"shortcut": "e", "title": "x", "text": " "}, 400},
		"shared refund":       {d.super, map[string]any{"shortcut": "refund", "title": "退款时效", "text": "您好，订单 {{order.number}} 的退款 1-3 个工作日到账。", "shared": true}, 202},
		"shared bye (hidden)": {d.super, map[string]any{"shortcut": "bye", "title": "再见", "text": "再见", "shared": true}, 202},
	} {
		if code := d.call(t, c.token, "POST", "/api/canned", c.body, nil); code != c.want {
			t.Errorf("%s: %d, want %d", name, code, c.want)
		}
	}

	var list struct {
		Canned []api.CannedItem `json:"canned"`
	}
	render := func() map[string]api.CannedItem {
		t.Helper()
		list.Canned = nil // decoding into the last answer's items would keep fields this one omits
		if code := d.call(t, d.token, "GET", "/api/conversations/"+w.conv+"/canned", nil, &list); code != 200 {
			t.Fatalf("canned for the conversation: %d", code)
		}
		out := map[string]api.CannedItem{}
		for _, c := range list.Canned {
			out[c.Shortcut] = c
		}
		return out
	}
	got := render()
	if len(got) != 2 || got["bye"].CannedID != own.CannedID || got["refund"].Owner != "" {
		t.Fatalf("agent-li's canned: %+v (want her own bye and the shared refund)", list.Canned)
	}
	if r := got["bye"].Rendered; r != "Thanks 韩梅梅! — 李娜 Li Na" {
		t.Errorf("bye rendered %q", r)
	}
	if r := got["refund"]; !strings.Contains(r.Rendered, "订单  的") || len(r.Missing) != 1 || r.Missing[0] != "order.number" {
		t.Errorf("refund without an order: %q missing %v", r.Rendered, r.Missing)
	}
	w.toolResult("oms", "lookup", "completed", "", map[string]any{"orders": []map[string]any{{"order_no": "SO20261208001", "status": "shipped"}}}, time.Now().UTC())
	bustest.WaitFor(t, 10*time.Second, "the order number filled in", func() bool {
		r := render()["refund"]
		return strings.Contains(r.Rendered, "订单 SO20261208001 的") && len(r.Missing) == 0
	})

	// Changing and deleting: her own yes, the shared ones only for supervisors.
	shared := got["refund"].CannedID
	if code := d.call(t, d.token, "PUT", "/api/canned/"+shared, map[string]any{"shortcut": "refund", "title": "x", "text": "x"}, nil); code != 403 {
		t.Errorf("an agent changing a shared response: %d", code)
	}
	if code := d.call(t, d.token, "PUT", "/api/canned/"+own.CannedID, map[string]any{"shortcut": "bye", "title": "Goodbye", "text": "Bye {{customer.name}}"}, nil); code != 202 {
		t.Errorf("changing her own: %d", code)
	}
	if code := d.call(t, d.token, "DELETE", "/api/canned/"+own.CannedID, nil, nil); code != 204 {
		t.Errorf("deleting her own: %d", code)
	}
	if got := render(); got["bye"].Owner != "" || got["bye"].Rendered != "再见" {
		t.Errorf("after deleting her bye, the shared one shows: %+v", got["bye"])
	}
	if code := d.call(t, d.super, "DELETE", "/api/canned/"+shared, nil, nil); code != 204 {
		t.Errorf("a supervisor deleting a shared one: %d", code)
	}
	if code := d.call(t, d.token, "DELETE", "/api/canned/"+shared, nil, nil); code != 404 {
		t.Errorf("deleting it again: %d", code)
	}
	// They are events: the desk's log has every save and delete.
	if evs := b.Events(t, bus.StreamDesk, "omni.desk.canned.>"); len(evs) != 6 {
		t.Errorf("%d canned events on OMNI_DESK, want 6 (4 saves, 2 deletes)", len(evs))
	}
}
