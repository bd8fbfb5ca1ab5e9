package desk_test

import (
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
)

// A conversation idle past DESK_AUTO_CLOSE_AFTER is asked closed, once however many passes see
// it before the unifier closes it, with the reason; a conversation with recent activity is not.
func TestAutoCloseIdleConversations(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(quiet()))
	d := startDesk(t, b, map[string]string{"DESK_ASSIGN": "true", "DESK_AUTO_CLOSE_AFTER": "5m"})
	idle := newWorld(t, b) // its last activity is 10 minutes ago
	idle.customer("张伟", nil)
	idle.opened("wechatkf")
	busy := newWorld(t, b)
	busy.customer("李雷", nil)
	busy.opened("webchat")
	busy.inbound("webchat", "web_visitor", "v-busy", "还在吗？", time.Now().UTC(), "webchat")
	for _, w := range []*world{idle, busy} {
		bustest.WaitFor(t, 10*time.Second, "the conversations on the desk", func() bool {
			return d.call(t, d.token, "GET", "/api/conversations/"+w.conv, nil, nil) == 200
		})
	}
	var closes []map[string]any
	bustest.WaitFor(t, 15*time.Second, "the idle conversation asked closed", func() bool {
		closes = closes[:0]
		for _, e := range b.Events(t, bus.StreamIn, "omni.in.desk.>") {
			if e.Type() == "omni.conversation.close.requested" {
				closes = append(closes, dataOf(t, e))
			}
		}
		return len(closes) > 0
	})
	time.Sleep(3 * time.Second) // three more passes (DESK_ASSIGN_INTERVAL 1s) see it still open
	closes = closes[:0]
	for _, e := range b.Events(t, bus.StreamIn, "omni.in.desk.>") {
		if e.Type() == "omni.conversation.close.requested" {
			closes = append(closes, dataOf(t, e))
		}
	}
	if len(closes) != 1 || closes[0]["conversation_id"] != idle.conv || closes[0]["reason"] != "no activity for 5m" {
		t.Fatalf("close requests %v: want one, for the idle conversation, reason \"no activity for 5m\"", closes)
	}
}
