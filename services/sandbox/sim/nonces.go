package sim

import (
	"sync"
	"time"
)

// Nonces remembers the signature nonces a vendor saw within a window, as vendors that refuse a
// reused nonce (Aliyun's SignatureNonceUsed) do. The zero value is not usable; use NewNonces.
type Nonces struct {
	window time.Duration
	mu     sync.Mutex
	seen   map[string]time.Time
}

// NewNonces returns a Nonces that forgets a nonce window after it was used.
func NewNonces(window time.Duration) *Nonces {
	return &Nonces{window: window, seen: map[string]time.Time{}}
}

// Use records nonce at now; false when it was used within the window.
func (n *Nonces) Use(nonce string, now time.Time) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for k, at := range n.seen {
		if now.Sub(at) > n.window {
			delete(n.seen, k)
		}
	}
	if _, used := n.seen[nonce]; used {
		return false
	}
	n.seen[nonce] = now
	return true
}
