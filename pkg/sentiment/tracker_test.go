package sentiment

import (
	"encoding/json"
	"errors"
	"math"
	"testing"
)

func TestTracker(t *testing.T) {
	t.Parallel()

	type turn struct {
		score      float64
		escalation bool
		want       Transition
	}
	tests := []struct {
		name         string
		cfg          TrackerConfig
		turns        []turn
		wantEpisodes int
	}{
		{
			name: "one episode raised once and cleared on recovery",
			turns: []turn{
				{0, false, Unchanged},
				{-0.7, false, Unchanged},      // mean -0.35
				{-0.7, false, TurnedNegative}, // mean -0.47
				{-0.8, false, Unchanged},      // still negative: no second alert
				{0.5, false, Unchanged},       // mean -0.33: between Enter and Leave, stays negative
				{0.5, false, Recovered},       // mean 0.07, above Leave
				{-0.3, false, Unchanged},      // mean 0.23
			},
			wantEpisodes: 1,
		},
		{
			name: "hysteresis: a mean between Enter and Leave neither raises nor clears",
			cfg:  TrackerConfig{Window: 1},
			turns: []turn{
				{-0.3, false, Unchanged},
				{-0.5, false, TurnedNegative},
				{-0.3, false, Unchanged},
				{-0.2, false, Unchanged},
				{-0.05, false, Recovered},
				{-0.3, false, Unchanged},
				{-0.45, false, TurnedNegative},
			},
			wantEpisodes: 2,
		},
		{
			name: "a furious first turn alerts at once",
			turns: []turn{
				{-0.8, false, TurnedNegative},
			},
			wantEpisodes: 1,
		},
		{
			name: "escalation turns negative whatever the mean and holds it",
			turns: []turn{
				{0.2, false, Unchanged},
				{-0.1, true, TurnedNegative},
				{0.9, true, Unchanged},
				{0.9, false, Recovered},
			},
			wantEpisodes: 1,
		},
		{
			name: "IgnoreEscalation leaves it to the mean",
			cfg:  TrackerConfig{IgnoreEscalation: true},
			turns: []turn{
				{0.2, false, Unchanged},
				{-0.1, true, Unchanged},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tr, err := NewTracker(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			for i, tu := range tt.turns {
				got := tr.Observe(Result{Score: tu.score, Escalation: tu.escalation})
				if got != tu.want {
					t.Fatalf("turn %d (score %v): got %v, want %v (mean %.3f)", i, tu.score, got, tu.want, tr.Mean())
				}
			}
			if tr.Episodes() != tt.wantEpisodes {
				t.Errorf("episodes %d, want %d", tr.Episodes(), tt.wantEpisodes)
			}
		})
	}
}

func TestTrackerWindowRecovery(t *testing.T) {
	t.Parallel()
	tr, err := NewTracker(TrackerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// Three negative turns fill the window; recovery needs enough better turns to lift the
	// mean of the last three above -0.1.
	for _, s := range []float64{-0.6, -0.6, -0.6} {
		tr.Observe(Result{Score: s})
	}
	if !tr.Negative() {
		t.Fatal("not negative after three turns at -0.6")
	}
	if got := tr.Observe(Result{Score: 0.3}); got != Unchanged { // -0.3
		t.Fatalf("one good turn: %v, want unchanged", got)
	}
	if got := tr.Observe(Result{Score: 0.3}); got != Recovered { // 0
		t.Fatalf("two good turns: %v, want recovered (mean %.2f)", got, tr.Mean())
	}
}

// TestTrackerSpike: a furious turn after a calm opening turns the conversation negative at
// once, though the window's mean stays above Enter; Spike -1 leaves it to the mean; the
// episode does not end on the same furious turn's mean.
func TestTrackerSpike(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		spike float64
		want  Transition
	}{{0, TurnedNegative}, {-0.95, Unchanged}, {-1, Unchanged}} {
		tr, err := NewTracker(TrackerConfig{Spike: c.spike})
		if err != nil {
			t.Fatal(err)
		}
		tr.Observe(Result{Score: 0.2}) // 你好，我想查一下我的信用卡账单
		tr.Observe(Result{Score: 0})   // 我的订单号是……
		if got := tr.Observe(Result{Score: -0.9}); got != c.want {
			t.Errorf("Spike %v: the furious turn (mean %.2f): %v, want %v", c.spike, tr.Mean(), got, c.want)
		}
	}
}

func TestTrackerConfigValidate(t *testing.T) {
	t.Parallel()
	for _, cfg := range []TrackerConfig{
		{Window: -1},
		{Window: 101},
		{Enter: -0.2, Leave: -0.3},
		{Enter: -1.5},
		{Leave: 1},
		{Spike: 0.1},
		{Spike: -1.5},
	} {
		if _, err := NewTracker(cfg); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("NewTracker(%+v): %v, want ErrInvalidOption", cfg, err)
		}
	}
}

// TestTrackerRestore: a tracker restored from the state of another, at any turn, answers every
// later turn as the original does (so a restarted service raises no alert twice), whatever the
// JSON round trip; a state that cannot be is refused.
func TestTrackerRestore(t *testing.T) {
	t.Parallel()
	scores := []float64{0.2, -0.7, -0.9, -0.8, 0.4, 0.6, 0.7, -0.9, -0.95, -0.9, 0.1, 0.9, 0.9}
	for cut := range len(scores) {
		orig, err := NewTracker(TrackerConfig{})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range scores[:cut] {
			orig.Observe(Result{Score: s})
		}
		raw, err := json.Marshal(orig.State())
		if err != nil {
			t.Fatal(err)
		}
		var st TrackerState
		if err := json.Unmarshal(raw, &st); err != nil {
			t.Fatal(err)
		}
		restored, err := RestoreTracker(TrackerConfig{}, st)
		if err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		for i, s := range scores[cut:] {
			if a, b := orig.Observe(Result{Score: s}), restored.Observe(Result{Score: s}); a != b || math.Abs(orig.Mean()-restored.Mean()) > 1e-12 {
				t.Fatalf("cut %d, turn %d: original %v (mean %v), restored %v (mean %v)", cut, cut+i, a, orig.Mean(), b, restored.Mean())
			}
		}
		if orig.Episodes() != restored.Episodes() || orig.Negative() != restored.Negative() {
			t.Fatalf("cut %d: episodes %d/%d", cut, orig.Episodes(), restored.Episodes())
		}
	}
	t.Run("window shrinks", func(t *testing.T) {
		t.Parallel()
		tr, err := RestoreTracker(TrackerConfig{Window: 2}, TrackerState{Scores: []float64{-1, 0.5, math.NaN()}})
		if err != nil {
			t.Fatal(err)
		}
		if got := tr.State().Scores; len(got) != 2 || got[0] != 0.5 || got[1] != 0 {
			t.Fatalf("scores %v", got)
		}
	})
	for _, bad := range []TrackerState{{Episodes: -1}, {Negative: true}} {
		if _, err := RestoreTracker(TrackerConfig{}, bad); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("RestoreTracker(%+v) = %v, want ErrInvalidOption", bad, err)
		}
	}
	if _, err := RestoreTracker(TrackerConfig{Window: -1}, TrackerState{}); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("bad config: %v", err)
	}
}
