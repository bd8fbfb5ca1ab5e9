package desk_test

import (
	"testing"

	"time"

	"github.com/omnibus-dev/omnibus/pkg/event"

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

// DESK_CLOSE_NOTICE: closing tells the customer on the conversation's channel, by the desk (no
// agent); the conversation is asked closed after it.
func TestCloseNotice(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(quiet()))
	const notice = "本次会话已结束，感谢您的咨询。"
	d := startDesk(t, b, map[string]string{"DESK_ASSIGN": "false", "DESK_CLOSE_NOTICE": notice})
	w := newWorld(t, b)
	w.customer("张伟", nil)
	w.opened("webchat")
	w.inbound("webchat", "web_visitor", "v-close", "好的，谢谢", time.Now().UTC(), "webchat")
	bustest.WaitFor(t, 10*time.Second, "the customer's address on the desk", func() bool {
		_, err := d.store.ReplyAddress(t.Context(), w.conv, "webchat")
		return err == nil
	})
	if code := d.call(t, d.token, "POST", "/api/conversations/"+w.conv+"/close", map[string]any{"reason": "resolved"}, nil); code != 202 {
		t.Fatalf("close: %d", code)
	}
	if n := b.StoredCount(t, bus.StreamOut, "omni.out.webchat.>"); n != 1 { // a work queue: counted, then read by subject
		t.Fatalf("%d sends on webchat, want the close notice", n)
	}
	st, err := b.Client.JetStream().Stream(t.Context(), bus.StreamOut)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := st.GetLastMsgForSubject(t.Context(), "omni.out.webchat.>")
	if err != nil {
		t.Fatal(err)
	}
	e, err := event.Decode(raw.Header, raw.Data)
	if err != nil {
		t.Fatal(err)
	}
	data := dataOf(t, e)
	msg, _ := data["message"].(map[string]any)
	if msg["text"] != notice || data["agent_id"] != nil || data["conversation_id"] != w.conv {
		t.Fatalf("close notice %v", data)
	}
	var closes int
	for _, e := range b.Events(t, bus.StreamIn, "omni.in.desk.>") {
		if e.Type() == "omni.conversation.close.requested" {
			closes++
		}
	}
	if closes != 1 {
		t.Fatalf("%d close requests, want 1", closes)
	}
}
