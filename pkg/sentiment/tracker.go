package sentiment

import (
	"fmt"
	"math"
)

// TrackerConfig configures a [Tracker]. The zero value is the default configuration, and a
// zero field takes its default (so Enter and Leave cannot be exactly 0).
type TrackerConfig struct {
	// Window is how many of the latest customer turns are averaged. Default 3.
	Window int
	// Enter: the conversation turns negative when the mean score of the window is below Enter.
	// Default -0.4.
	Enter float64
	// Leave: a negative conversation recovers when the mean score of the window is above
	// Leave. Default -0.1. Leave must be above Enter: the gap is the hysteresis that keeps a
	// conversation hovering around one threshold from raising alert after alert.
	Leave float64
	// Spike: one turn scoring at or below Spike turns the conversation negative whatever the
	// mean — a furious turn after a calm opening is the moment the agent must change course, and
	// the window's calm turns must not dilute it. Default -0.8; -1 turns it off.
	Spike float64
	// IgnoreEscalation: by default a turn with [Result.Escalation] (投诉, "speak to your
	// manager") turns the conversation negative whatever the mean; set to leave it to the mean.
	IgnoreEscalation bool
}

func (c *TrackerConfig) setDefaults() {
	if c.Window == 0 {
		c.Window = 3
	}
	if c.Enter == 0 {
		c.Enter = -0.4
	}
	if c.Leave == 0 {
		c.Leave = -0.1
	}
	if c.Spike == 0 {
		c.Spike = -0.8
	}
}

// Validate reports a configuration that cannot work, wrapping [ErrInvalidOption]. Zero fields
// are read as their defaults.
func (c TrackerConfig) Validate() error {
	c.setDefaults()
	switch {
	case c.Window < 1 || c.Window > 100:
		return fmt.Errorf("%w: tracker Window %d: want 1 to 100 customer turns", ErrInvalidOption, c.Window)
	case c.Enter <= -1 || c.Enter >= 1 || c.Leave <= -1 || c.Leave >= 1:
		return fmt.Errorf("%w: tracker Enter %v and Leave %v must lie in (-1, 1), the range of a score", ErrInvalidOption, c.Enter, c.Leave)
	case c.Spike < -1 || c.Spike >= 0:
		return fmt.Errorf("%w: tracker Spike %v must lie in [-1, 0) (-1 turns it off)", ErrInvalidOption, c.Spike)
	case c.Leave <= c.Enter:
		return fmt.Errorf("%w: tracker Leave %v must be above Enter %v, or a negative conversation could never recover", ErrInvalidOption, c.Leave, c.Enter)
	}
	return nil
}

// Transition is what one turn did to a conversation's episode state.
type Transition int

// Transitions.
const (
	// Unchanged: the conversation stays as it was, negative or not.
	Unchanged Transition = iota
	// TurnedNegative: a negative episode starts; raise the alert, once.
	TurnedNegative
	// Recovered: the negative episode ends; clear the alert.
	Recovered
)

func (t Transition) String() string {
	switch t {
	case TurnedNegative:
		return "turned_negative"
	case Recovered:
		return "recovered"
	}
	return "unchanged"
}

// Tracker follows the customer side of one conversation and says when it turns negative and
// when it recovers, so an alert is raised once per negative episode and cleared when the
// customer calms down. Feed it the customer's turns only, in order. It is pure logic, keeps
// Window scores, and is not safe for concurrent use: one Tracker per conversation, used by the
// goroutine that handles that conversation.
type Tracker struct {
	cfg      TrackerConfig
	scores   []float64 // ring of the latest Window scores
	next     int
	negative bool
	episodes int
}

// NewTracker returns a Tracker for one conversation; errors wrap [ErrInvalidOption].
func NewTracker(cfg TrackerConfig) (*Tracker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	return &Tracker{cfg: cfg, scores: make([]float64, 0, cfg.Window)}, nil
}

// Observe takes the next customer turn and returns the transition it causes. Before Window
// turns have been seen, the mean is over the turns seen so far, so a first message furious
// enough alerts at once.
func (t *Tracker) Observe(r Result) Transition {
	s := r.Score
	if math.IsNaN(s) {
		s = 0
	}
	if len(t.scores) < t.cfg.Window {
		t.scores = append(t.scores, s)
	} else {
		t.scores[t.next] = s
		t.next = (t.next + 1) % t.cfg.Window
	}
	mean := t.Mean()
	escalates := r.Escalation && !t.cfg.IgnoreEscalation
	spikes := t.cfg.Spike > -1 && s <= t.cfg.Spike
	switch {
	case !t.negative && (mean < t.cfg.Enter || escalates || spikes):
		t.negative = true
		t.episodes++
		return TurnedNegative
	case t.negative && mean > t.cfg.Leave && !escalates && !spikes:
		t.negative = false
		return Recovered
	}
	return Unchanged
}

// Mean is the mean score of the window, 0 before any turn.
func (t *Tracker) Mean() float64 {
	if len(t.scores) == 0 {
		return 0
	}
	sum := 0.0
	for _, s := range t.scores {
		sum += s
	}
	return sum / float64(len(t.scores))
}

// Negative reports whether the conversation is in a negative episode.
func (t *Tracker) Negative() bool { return t.negative }

// Episodes is how many negative episodes the conversation has had.
func (t *Tracker) Episodes() int { return t.episodes }

// TrackerState is what a [Tracker] remembers, for a service that keeps episodes across restarts
// (in a key-value bucket): restoring it gives a Tracker that answers the next turns exactly as
// the one it was taken from, so an alert already raised is not raised again. Its JSON form is
// stable.
type TrackerState struct {
	// Scores are the window's scores, oldest first.
	Scores   []float64 `json:"scores,omitempty"`
	Negative bool      `json:"negative,omitempty"`
	Episodes int       `json:"episodes,omitempty"`
}

// State returns a copy of what t remembers.
func (t *Tracker) State() TrackerState {
	s := TrackerState{Negative: t.negative, Episodes: t.episodes, Scores: make([]float64, 0, len(t.scores))}
	if len(t.scores) < t.cfg.Window {
		s.Scores = append(s.Scores, t.scores...)
	} else {
		s.Scores = append(append(s.Scores, t.scores[t.next:]...), t.scores[:t.next]...)
	}
	return s
}

// RestoreTracker returns a Tracker for cfg that continues from s. Scores beyond cfg's window are
// dropped, oldest first, and NaN reads as 0, as Observe does; a negative Episodes count, or a
// negative state with no episode, fails with [ErrInvalidOption], as does a bad cfg.
func RestoreTracker(cfg TrackerConfig, s TrackerState) (*Tracker, error) {
	t, err := NewTracker(cfg)
	if err != nil {
		return nil, err
	}
	if s.Episodes < 0 || s.Negative && s.Episodes == 0 {
		return nil, fmt.Errorf("%w: tracker state with %d episodes, negative %v", ErrInvalidOption, s.Episodes, s.Negative)
	}
	scores := s.Scores
	if len(scores) > t.cfg.Window {
		scores = scores[len(scores)-t.cfg.Window:]
	}
	for _, v := range scores {
		if math.IsNaN(v) {
			v = 0
		}
		t.scores = append(t.scores, v)
	}
	t.negative, t.episodes = s.Negative, s.Episodes
	return t, nil
}
