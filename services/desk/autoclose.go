package desk

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/services/desk/internal/api"
	"github.com/omnibus-dev/omnibus/services/desk/internal/store"
)

// autoClose asks the unifier, every interval, to close the open conversations that have been
// idle longer than after (no message either way), at most 100 a pass, the longest idle first.
// The request's id is the conversation's and its last activity's, so asking again before the
// unifier has closed it is the same event, stored once (JetStream's duplicate window).
// Each idle spell's conversation gets the close notice (notice, DESK_CLOSE_NOTICE) once, first.
func autoClose(ctx context.Context, st *store.Store, pub bus.Publisher, notice func(context.Context, store.Conversation), after, interval time.Duration, log *slog.Logger) {
	reason := "no activity for " + humanDuration(after)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	noticed := map[string]bool{} // request ids whose notice went, while they stay idle
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		ids, last, err := st.IdleConversations(ctx, time.Now().Add(-after), 100)
		if err != nil {
			log.Warn("auto-close: listing idle conversations failed", "err", err)
			continue
		}
		still := map[string]bool{}
		for i, id := range ids {
			reqID := "desk-autoclose:" + id + ":" + strconv.FormatInt(last[i].UnixMilli(), 10)
			if !noticed[reqID] {
				if c, err := st.GetConversation(ctx, id); err == nil {
					notice(ctx, c)
				}
			}
			still[reqID] = true
			e, err := event.New(api.TypeCloseRequested, api.Source, map[string]any{"conversation_id": id, "reason": reason},
				event.WithID(reqID), event.WithSubject(id), event.WithPartitionKey(id))
			if err == nil {
				err = pub.Publish(ctx, api.SubjectConversation, e)
			}
			if err != nil {
				log.Warn("auto-close: request failed", "conversation", id, "err", err)
				break
			}
			log.Info("auto-close requested", "conversation", id, "idle_since", last[i], "reason", reason)
		}
		noticed = still
	}
}

// humanDuration writes d as people do: 24h, 90m, 2h30m.
func humanDuration(d time.Duration) string {
	s := d.Round(time.Minute).String()
	for _, z := range []string{"m0s", "h0m"} {
		if len(s) > len(z) && s[len(s)-len(z):] == z {
			s = s[:len(s)-len(z)+1]
		}
	}
	return s
}
