package sentiment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnibus-dev/omnibus/pkg/connector"
	analysis "github.com/omnibus-dev/omnibus/pkg/sentiment"
)

// EpisodeBucket is the JetStream KV bucket of the conversations' episode state, keyed by
// conversation id.
const EpisodeBucket = "sentiment_episodes"

// rememberApplied is how many of a conversation's latest messages its state remembers as
// applied, which is how a redelivery long after the duplicate window is recognised.
const rememberApplied = 32

// episodeState is what the connector keeps per conversation.
type episodeState struct {
	Tracker analysis.TrackerState `json:"tracker"`
	// Applied are the ids of the latest messages applied, oldest first.
	Applied []string `json:"applied,omitempty"`

	revision uint64 // of the KV entry read; 0 when there was none
}

func (s *episodeState) applied(id string) bool { return slices.Contains(s.Applied, id) }

func (s *episodeState) remember(id string) {
	s.Applied = append(s.Applied, id)
	if n := len(s.Applied) - rememberApplied; n > 0 {
		s.Applied = slices.Delete(s.Applied, 0, n)
	}
}

type episodes struct{ kv jetstream.KeyValue }

func openEpisodes(ctx context.Context, rt *connector.Runtime, cfg Config) (*episodes, error) {
	kv, err := rt.KeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      EpisodeBucket,
		Description: "sentiment connector: each conversation's negative-episode state (tracker window, messages applied)",
		History:     1,
		TTL:         cfg.EpisodeTTL,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("sentiment episode bucket %s: %w", EpisodeBucket, err)
	}
	return &episodes{kv: kv}, nil
}

// keyRE is what a KV key may be; conversation ids (UUIDs) are.
var keyRE = regexp.MustCompile(`^[-/_=.a-zA-Z0-9]{1,256}$`)

func validKey(k string) bool { return keyRE.MatchString(k) }

// get returns a conversation's state, empty when none is stored.
func (e *episodes) get(ctx context.Context, conv string) (episodeState, error) {
	entry, err := e.kv.Get(ctx, conv)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return episodeState{}, nil
	}
	if err != nil {
		return episodeState{}, fmt.Errorf("%w of %s: %w", errState, conv, err)
	}
	var s episodeState
	if err := json.Unmarshal(entry.Value(), &s); err != nil {
		s = episodeState{} // unreadable: start afresh rather than block the conversation
	}
	s.revision = entry.Revision()
	return s, nil
}

// put stores s with compare-and-set against the revision it was read at: another replica that
// applied a message of the conversation meanwhile makes it fail, and the message is redelivered.
func (e *episodes) put(ctx context.Context, conv string, s episodeState) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if s.revision == 0 {
		_, err = e.kv.Create(ctx, conv, b)
	} else {
		_, err = e.kv.Update(ctx, conv, b, s.revision)
	}
	if err != nil {
		return fmt.Errorf("%w of %s: %w", errState, conv, err)
	}
	return nil
}
