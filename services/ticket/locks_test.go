package ticket

import (
	"sync"
	"testing"
	"time"
)

// TestConvLocks: requests of one conversation wait for each other; other conversations do not;
// an idle conversation's lock is dropped (the map does not grow with every conversation seen).
func TestConvLocks(t *testing.T) {
	t.Parallel()
	var l convLocks
	unlockA := l.lock("a")
	unlockB := l.lock("b") // another conversation: not blocked by a
	got := make(chan struct{})
	go func() {
		defer close(got)
		l.lock("a")()
	}()
	select {
	case <-got:
		t.Fatal("a second request of conversation a ran while the first held its lock")
	case <-time.After(50 * time.Millisecond):
	}
	unlockA()
	<-got
	unlockB()
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.lock(string(rune('a' + i%7)))()
		}()
	}
	wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.m) != 0 {
		t.Fatalf("%d idle locks kept", len(l.m))
	}
}
