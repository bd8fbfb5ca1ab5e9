package desk_test

import (
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
)

// TestAutoSuggestions: a burst of customer messages on a channel of DESK_AI_AUTO_CHANNELS gets
// one AI suggestion request, without the button, with the burst's turns and the matching
// articles; a message on another channel gets none.
func TestAutoSuggestions(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(quiet()))
	startDesk(t, b, map[string]string{"DESK_ASSIGN": "false", "DESK_AI_AUTO_CHANNELS": "webchat", "DESK_AI_AUTO_QUIET": "300ms"})

	other := newWorld(t, b)
	other.customer("赵六", nil)
	other.opened("wechatkf")
	other.inbound("wechatkf", "wechat_openid", "oWx-zhao", "退款多久到账？", time.Now().UTC(), "wechatkf")

	w := newWorld(t, b)
	w.customer("钱七", nil)
	w.opened("webchat")
	now := time.Now().UTC()
	w.inbound("webchat", "webchat_visitor", "v-qian", "你好", now.Add(-2*time.Second), "webchat")
	w.inbound("webchat", "webchat_visitor", "v-qian", "我的银行卡被重复扣款了", now.Add(-time.Second), "webchat")

	waitCount(t, b, bus.StreamTool, "omni.tool.ai.suggest.requested", 1)
	req := dataOf(t, lastEvent(t, b, bus.StreamTool, "omni.tool.ai.suggest.requested"))
	turns, _ := req["context"].([]any)
	knowledge, _ := req["knowledge"].([]any)
	if req["conversation_id"] != w.conv || len(turns) != 2 || len(knowledge) == 0 {
		t.Fatalf("automatic request %v", req)
	}
	if first, _ := knowledge[0].(map[string]any); first["title"] != "银行卡重复扣款" {
		t.Fatalf("first article %v", first)
	}
	// One per burst, none for the other channel: nothing more comes.
	time.Sleep(time.Second)
	if n := b.StoredCount(t, bus.StreamTool, "omni.tool.ai.suggest.requested"); n != 1 {
		t.Fatalf("%d automatic requests, want 1", n)
	}
}
