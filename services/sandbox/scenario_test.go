package sandbox

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/sentiment"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

// TestScenarioComplaints: with complaints on, a customer's complaint is written in order, on one
// channel, by one customer, and its lines turn a conversation negative (so the desk shows an
// alert) before calming it down again.
func TestScenarioComplaints(t *testing.T) {
	t.Parallel()
	type write struct {
		customer int
		channel  string
		text     string
	}
	var mu sync.Mutex
	var writes []write
	channel := func(name string) sim.Channel {
		return sim.NewChannel(name, func(_ context.Context, c sim.Customer, text string) error {
			mu.Lock()
			defer mu.Unlock()
			writes = append(writes, write{c.ID, name, text})
			return nil
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	sc := &Scenario{Customers: sim.Population(5, 1), Channels: []sim.Channel{channel("sms"), channel("wechatkf")},
		Interval: time.Millisecond, Angry: 0.5, Seed: 7, Log: slog.New(slog.DiscardHandler)}
	done := make(chan error, 1)
	go func() { done <- sc.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(writes)
		mu.Unlock()
		if n >= 300 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, story := range complaints {
		// Find a customer who told this story from its first line, and check the rest followed in order.
		for i, w := range writes {
			if w.text != story[0] {
				continue
			}
			next := 1
			for _, v := range writes[i+1:] {
				if next < len(story) && v.customer == w.customer && v.text == story[next] {
					if v.channel != w.channel {
						t.Fatalf("complaint moved from %s to %s", w.channel, v.channel)
					}
					next++
				}
			}
			if next == len(story) {
				tr, _ := sentiment.NewTracker(sentiment.TrackerConfig{})
				var seen []sentiment.Transition
				for _, line := range story {
					seen = append(seen, tr.Observe(sentiment.Analyze(line)))
				}
				if !slices.Contains(seen, sentiment.TurnedNegative) {
					t.Errorf("complaint %q does not turn the conversation negative: %v", story[0], seen)
				}
				if len(story) > 3 && !slices.Contains(seen, sentiment.Recovered) {
					t.Errorf("complaint %q never calms down: %v", story[0], seen)
				}
			}
			break
		}
	}
	told := 0
	for _, w := range writes {
		for _, story := range complaints {
			if w.text == story[0] {
				told++
			}
		}
	}
	if told == 0 {
		t.Fatalf("no complaint in %d writes", len(writes))
	}
}
