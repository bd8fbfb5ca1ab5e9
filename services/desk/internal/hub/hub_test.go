package hub

import "testing"

func TestFanOutAndSlowSubscriber(t *testing.T) {
	t.Parallel()
	h := New()
	fast, cancelFast := h.Subscribe()
	defer cancelFast()
	slow, cancelSlow := h.Subscribe()
	defer cancelSlow()
	for i := range Buffer + 1 {
		h.Publish(Notice{Type: "t", ConversationID: string(rune('a' + i%26))})
		if i < Buffer {
			<-fast // the fast subscriber keeps up
		}
	}
	// The slow one fell Buffer behind: it is cut off (its channel closed after what it buffered).
	n := 0
	for range slow {
		n++
	}
	if n != Buffer {
		t.Fatalf("slow subscriber got %d notices before its channel closed, want %d", n, Buffer)
	}
	if got := <-fast; got.Type != "t" {
		t.Fatalf("fast subscriber got %+v", got)
	}
	if h.Subscribers() != 1 {
		t.Fatalf("subscribers = %d, want 1", h.Subscribers())
	}
	cancelSlow() // cancelling a cut-off subscription is harmless
	cancelFast()
	cancelFast()
	if h.Subscribers() != 0 {
		t.Fatalf("subscribers = %d after cancel", h.Subscribers())
	}
}

func TestAddressedNotices(t *testing.T) {
	t.Parallel()
	h := New()
	li, cancelLi := h.SubscribeAs("agent-li")
	defer cancelLi()
	wang, cancelWang := h.SubscribeAs("agent-wang")
	defer cancelWang()
	anon, cancelAnon := h.Subscribe()
	defer cancelAnon()
	h.Publish(Notice{Type: "private", AgentID: "agent-li"})
	h.Publish(Notice{Type: "all"})
	if n := <-li; n.Type != "private" {
		t.Fatalf("agent-li got %+v first", n)
	}
	for name, ch := range map[string]<-chan Notice{"agent-li": li, "agent-wang": wang, "anonymous": anon} {
		if n := <-ch; n.Type != "all" {
			t.Fatalf("%s got %+v, want only the broadcast", name, n)
		}
	}
}
