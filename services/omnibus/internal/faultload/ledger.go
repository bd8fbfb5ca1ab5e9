package faultload

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Ledger records every message the load tool sent and which of them the connector
// acknowledged. Only acknowledged messages count: for those the connector promised that the
// system has them. It is safe for concurrent use.
type Ledger struct {
	mu      sync.Mutex
	entries map[string]*Entry
	order   []string // ids in the order they were first sent
	answers map[string]int
	pushes  int
}

// Entry is one message of the ledger.
type Entry struct {
	ID       string    // the event id the connector derives from the vendor's message id
	Sent     time.Time // first push
	Acked    time.Time // when the connector acknowledged it; zero until then
	Attempts int       // pushes that carried it
	Rejected string    // the final answer of a message the tool gave up on (not retryable)
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger {
	return &Ledger{entries: map[string]*Entry{}, answers: map[string]int{}}
}

// add records new messages, sent now.
func (l *Ledger) add(ids []string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		if _, ok := l.entries[id]; ok {
			continue
		}
		l.entries[id] = &Entry{ID: id, Sent: now}
		l.order = append(l.order, id)
	}
}

// pushed records one push of ids and its answer: an HTTP status ("200", "503") or "error" for
// a transport failure.
func (l *Ledger) pushed(ids []string, answer string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pushes++
	l.answers[answer]++
	for _, id := range ids {
		if e := l.entries[id]; e != nil {
			e.Attempts++
		}
	}
}

// ack records that the connector acknowledged ids.
func (l *Ledger) ack(ids []string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		if e := l.entries[id]; e != nil && e.Acked.IsZero() {
			e.Acked = now
		}
	}
}

// reject records that the tool gave up on ids after a final answer.
func (l *Ledger) reject(ids []string, answer string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		if e := l.entries[id]; e != nil && e.Acked.IsZero() {
			e.Rejected = answer
		}
	}
}

// Acked returns the ids the connector acknowledged, in the order they were first sent.
func (l *Ledger) Acked() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.order))
	for _, id := range l.order {
		if !l.entries[id].Acked.IsZero() {
			out = append(out, id)
		}
	}
	return out
}

// Pending returns the ids sent but neither acknowledged nor rejected yet.
func (l *Ledger) Pending() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, id := range l.order {
		if e := l.entries[id]; e.Acked.IsZero() && e.Rejected == "" {
			out = append(out, id)
		}
	}
	return out
}

// Entry returns a copy of id's entry.
func (l *Ledger) Entry(id string) (Entry, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.entries[id]
	if !ok {
		return Entry{}, false
	}
	return *e, true
}

// LedgerStats are a ledger's counts at one moment.
type LedgerStats struct {
	Sent, Acked, Pending, Rejected int
	Pushes                         int            // HTTP requests made
	Answers                        map[string]int // pushes by answer: HTTP status, or "error" (no answer)
}

// Retries is how many pushes were not acknowledged (and so were pushed again, unless rejected).
func (s LedgerStats) Retries() int {
	n := s.Pushes
	for a, c := range s.Answers {
		if strings.HasPrefix(a, "2") {
			n -= c
		}
	}
	return n
}

// Sub returns the counts that happened between earlier and s.
func (s LedgerStats) Sub(earlier LedgerStats) LedgerStats {
	d := LedgerStats{Sent: s.Sent - earlier.Sent, Acked: s.Acked - earlier.Acked, Pending: s.Pending, Rejected: s.Rejected - earlier.Rejected,
		Pushes: s.Pushes - earlier.Pushes, Answers: map[string]int{}}
	for a, c := range s.Answers {
		if n := c - earlier.Answers[a]; n != 0 {
			d.Answers[a] = n
		}
	}
	return d
}

func (s LedgerStats) String() string {
	var answers []string
	for _, a := range slices.Sorted(maps.Keys(s.Answers)) {
		answers = append(answers, fmt.Sprintf("%s×%d", a, s.Answers[a]))
	}
	return fmt.Sprintf("%d sent, %d acknowledged, %d pending, %d rejected; %d pushes, %d not acknowledged (%s)",
		s.Sent, s.Acked, s.Pending, s.Rejected, s.Pushes, s.Retries(), strings.Join(answers, " "))
}

// Stats returns the ledger's counts now.
func (l *Ledger) Stats() LedgerStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := LedgerStats{Sent: len(l.order), Pushes: l.pushes, Answers: maps.Clone(l.answers)}
	for _, e := range l.entries {
		switch {
		case !e.Acked.IsZero():
			s.Acked++
		case e.Rejected != "":
			s.Rejected++
		default:
			s.Pending++
		}
	}
	return s
}
