package loadgen

import (
	"context"
	"sort"
	"sync"
	"time"
)

// benchAppName marks the bench's own Postgres connections, so that the wait sampler sees only
// the unifier's.
const benchAppName = "omnibus-bench"

// WaitShare is the share of sampled unifier-connection time spent in one state.
type WaitShare struct {
	State string  `json:"state"`
	Share float64 `json:"share"`
}

// waitSampler samples pg_stat_activity of the unifier's connections: what each backend is doing
// (running, waiting for a lock, for WAL, or for the next statement from the unifier).
type waitSampler struct {
	mu      sync.Mutex
	counts  map[string]int
	samples int
	stop    context.CancelFunc
	done    chan struct{}
}

func (r *runner) startWaitSampler(ctx context.Context) *waitSampler {
	ctx, cancel := context.WithCancel(ctx)
	s := &waitSampler{counts: map[string]int{}, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			rows, err := r.stats.Query(ctx, `SELECT CASE
					WHEN state = 'active' AND wait_event IS NULL THEN 'active: running'
					WHEN state = 'active' THEN 'active: waiting on ' || wait_event_type || ' ' || wait_event
					WHEN state = 'idle in transaction' THEN 'idle in transaction (waiting for the unifier''s next statement)'
					ELSE coalesce(state, '?') END
				FROM pg_stat_activity
				WHERE backend_type = 'client backend' AND datname = current_database() AND pid <> pg_backend_pid()
				  AND application_name NOT LIKE '`+benchAppName+`%'`)
			r.ownTx.Add(1)
			if err != nil {
				continue
			}
			s.mu.Lock()
			for rows.Next() {
				var st string
				if rows.Scan(&st) == nil {
					s.counts[st]++
					s.samples++
				}
			}
			s.mu.Unlock()
			rows.Close()
		}
	}()
	return s
}

// finish stops sampling and returns the shares, largest first.
func (s *waitSampler) finish() []WaitShare {
	s.stop()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []WaitShare
	for st, n := range s.counts {
		out = append(out, WaitShare{State: st, Share: float64(n) / float64(max(1, s.samples))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Share > out[j].Share })
	return out
}
