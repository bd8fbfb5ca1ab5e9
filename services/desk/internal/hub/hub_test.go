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
