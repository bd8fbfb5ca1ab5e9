package desk

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// autoSuggester asks for an AI suggestion on its own when a customer writes on one of
// DESK_AI_AUTO_CHANNELS: once the conversation has been quiet for DESK_AI_AUTO_QUIET (one
// suggestion per burst of messages), and only for live traffic — a replay of the log asks for
// none. It lives in the desk, not in assist, because the desk holds what a request needs: the
// recent turns, the knowledge base and the assignee the pieces stream to.
type autoSuggester struct {
	ctx      context.Context
	channels map[string]bool
	quiet    time.Duration
	live     func(context.Context) bool // the projection has caught up with the log
	suggest  func(ctx context.Context, conversationID string) error
	log      *slog.Logger

	mu      sync.Mutex
	timers  map[string]*time.Timer
	wg      sync.WaitGroup
	stopped bool
}

// inbound is the projection's OnInbound.
func (s *autoSuggester) inbound(ctx context.Context, conversationID, channel string) {
	if !s.channels[channel] || !s.live(ctx) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	if t := s.timers[conversationID]; t != nil && t.Stop() {
		s.wg.Done() // its function will not run
	}
	s.wg.Add(1)
	s.timers[conversationID] = time.AfterFunc(s.quiet, func() {
		defer s.wg.Done()
		s.mu.Lock()
		delete(s.timers, conversationID)
		s.mu.Unlock()
		if s.ctx.Err() != nil {
			return
		}
		if err := s.suggest(s.ctx, conversationID); err != nil {
			s.log.Warn("automatic AI suggestion not requested", "conversation", conversationID, "err", err)
		}
	})
}

// stop cancels the pending suggestions and waits for those being asked for.
func (s *autoSuggester) stop() {
	s.mu.Lock()
	s.stopped = true
	for id, t := range s.timers {
		if t.Stop() {
			s.wg.Done()
		}
		delete(s.timers, id)
	}
	s.mu.Unlock()
	s.wg.Wait()
}
