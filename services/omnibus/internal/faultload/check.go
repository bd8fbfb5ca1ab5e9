package faultload

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnibus-dev/omnibus/pkg/bus"
)

// What the checker reads.
const (
	// SubjectInbound is where the sms connector stores uplinks (every partition).
	SubjectInbound = "omni.in.sms.message.*"
	// SubjectDeskAdded is the unifier's event for a message added to a conversation.
	SubjectDeskAdded = "omni.desk.message.added"
)

// Checker compares a ledger with what the system stored: OMNI_IN, the unifier's messages table,
// OMNI_DESK and OMNI_DLQ.
type Checker struct {
	JS jetstream.JetStream
	// DB is the unifier's database (its messages table).
	DB *pgxpool.Pool
	// DeadLetters lists OMNI_DLQ (a *bus.Client).
	DeadLetters bus.DeadLetters
	// Prefix is the run's event id prefix (Load.Prefix).
	Prefix string
}

// Counts are the cheap figures of progress: stored messages, not ids.
type Counts struct {
	Inbound     uint64 // messages on SubjectInbound in OMNI_IN
	Desk        uint64 // omni.desk.message.added events in OMNI_DESK
	Store       uint64 // rows of the run in the messages table
	DeadLetters uint64 // messages in OMNI_DLQ
}

func (c Counts) String() string {
	return fmt.Sprintf("OMNI_IN %d, store %d, desk events %d, dead letters %d", c.Inbound, c.Store, c.Desk, c.DeadLetters)
}

// Counts reads the counts: three stream info requests and one count query.
func (c *Checker) Counts(ctx context.Context) (Counts, error) {
	var out Counts
	var err error
	if out.Inbound, err = StoredCount(ctx, c.JS, bus.StreamIn, SubjectInbound); err != nil {
		return out, err
	}
	if out.Desk, err = StoredCount(ctx, c.JS, bus.StreamDesk, SubjectDeskAdded); err != nil {
		return out, err
	}
	if out.DeadLetters, err = StoredCount(ctx, c.JS, bus.StreamDLQ, "omni.dlq.>"); err != nil {
		return out, err
	}
	if err := c.DB.QueryRow(ctx, `SELECT count(*) FROM messages WHERE event_id LIKE $1`, c.Prefix+"%").Scan(&out.Store); err != nil {
		return out, fmt.Errorf("messages table: %w", err)
	}
	return out, nil
}

// Report is the ledger held against the system. Id lists are capped at a few examples; the
// counts beside them are complete.
type Report struct {
	Ledger LedgerStats

	Inbound           int      // acknowledged ids stored in OMNI_IN
	InboundCopies     int      // messages OMNI_IN holds for the run's ids
	InboundUnacked    int      // run's ids stored but never acknowledged (allowed: an answer that got lost)
	InboundMissing    int      // acknowledged ids not in OMNI_IN
	InboundDuplicated int      // ids (of any event) OMNI_IN holds more than once
	InboundExamples   []string // some missing or duplicated ids

	Store         int // acknowledged ids in the messages table
	StoreMissing  int
	StoreExamples []string

	Desk           int // acknowledged ids with an omni.desk.message.added
	DeskEvents     int // omni.desk.message.added events about the run's ids
	DeskMissing    int
	DeskDuplicated int // ids with more than one omni.desk.message.added
	DeskExamples   []string

	DeadLetters []bus.DeadLetter
}

const examples = 5

// OK reports whether nothing was lost, duplicated or stranded, and the load left nothing
// pending or rejected.
func (r Report) OK() bool {
	return r.Ledger.Pending == 0 && r.Ledger.Rejected == 0 && r.InboundMissing == 0 && r.InboundDuplicated == 0 &&
		r.StoreMissing == 0 && r.DeskMissing == 0 && r.DeskDuplicated == 0 && len(r.DeadLetters) == 0
}

func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ledger:    %s\n", r.Ledger)
	fmt.Fprintf(&b, "OMNI_IN:   %d of %d acknowledged stored (%d copies), %d missing, %d ids stored twice or more, %d stored but never acknowledged",
		r.Inbound, r.Ledger.Acked, r.InboundCopies, r.InboundMissing, r.InboundDuplicated, r.InboundUnacked)
	exampleList(&b, r.InboundExamples)
	fmt.Fprintf(&b, "\nstore:     %d of %d acknowledged in the messages table, %d missing", r.Store, r.Ledger.Acked, r.StoreMissing)
	exampleList(&b, r.StoreExamples)
	fmt.Fprintf(&b, "\nOMNI_DESK: %d of %d acknowledged with omni.desk.message.added (%d events), %d missing, %d duplicated",
		r.Desk, r.Ledger.Acked, r.DeskEvents, r.DeskMissing, r.DeskDuplicated)
	exampleList(&b, r.DeskExamples)
	fmt.Fprintf(&b, "\nOMNI_DLQ:  %d dead letters", len(r.DeadLetters))
	for i, d := range r.DeadLetters {
		if i == examples {
			fmt.Fprintf(&b, "\n  ...")
			break
		}
		fmt.Fprintf(&b, "\n  seq %d %s %s (consumer %s, %d deliveries): %s", d.Seq, d.OriginalSubject, d.EventID, d.Consumer, d.Deliveries, d.Reason)
	}
	return b.String()
}

func exampleList(b *strings.Builder, ids []string) {
	if len(ids) > 0 {
		fmt.Fprintf(b, " (e.g. %s)", strings.Join(ids, ", "))
	}
}

func addExample(list *[]string, id string) {
	if len(*list) < examples {
		*list = append(*list, id)
	}
}

// Check holds the ledger against OMNI_IN, the messages table, OMNI_DESK and OMNI_DLQ. It reads
// every message of the run's subjects, so call it once the counts say the system settled.
func (c *Checker) Check(ctx context.Context, l *Ledger) (Report, error) {
	r := Report{Ledger: l.Stats()}
	acked := l.Acked()
	isAcked := make(map[string]bool, len(acked))
	for _, id := range acked {
		isAcked[id] = true
	}

	// OMNI_IN: every inbound event, by id, to find any stored twice (a redrive must not add one).
	copies := map[string]int{}
	if err := Scan(ctx, c.JS, bus.StreamIn, "omni.in.>", true, func(m jetstream.Msg) {
		copies[Header(m.Headers(), "ce-id")]++
	}); err != nil {
		return r, err
	}
	for _, id := range slices.Sorted(maps.Keys(copies)) {
		n := copies[id]
		if n > 1 {
			r.InboundDuplicated++
			addExample(&r.InboundExamples, fmt.Sprintf("%s stored %d times", id, n))
		}
		if strings.HasPrefix(id, c.Prefix) {
			r.InboundCopies += n
			if !isAcked[id] {
				r.InboundUnacked++
			}
		}
	}
	for _, id := range acked {
		if copies[id] > 0 {
			r.Inbound++
		} else {
			r.InboundMissing++
			addExample(&r.InboundExamples, id+" missing")
		}
	}

	// The unifier's store: messages.event_id is the event id (its primary key: at most once).
	stored := map[string]bool{}
	rows, err := c.DB.Query(ctx, `SELECT event_id FROM messages WHERE event_id LIKE $1`, c.Prefix+"%")
	if err != nil {
		return r, fmt.Errorf("messages table: %w", err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return r, fmt.Errorf("messages table: %w", err)
		}
		stored[id] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return r, fmt.Errorf("messages table: %w", err)
	}
	for _, id := range acked {
		if stored[id] {
			r.Store++
		} else {
			r.StoreMissing++
			addExample(&r.StoreExamples, id)
		}
	}

	// OMNI_DESK: one omni.desk.message.added per message (data.message.event_id).
	desk := map[string]int{}
	if err := Scan(ctx, c.JS, bus.StreamDesk, SubjectDeskAdded, false, func(m jetstream.Msg) {
		var d struct {
			Message struct {
				EventID string `json:"event_id"`
			} `json:"message"`
		}
		if json.Unmarshal(m.Data(), &d) == nil && strings.HasPrefix(d.Message.EventID, c.Prefix) {
			desk[d.Message.EventID]++
		}
	}); err != nil {
		return r, err
	}
	for _, id := range slices.Sorted(maps.Keys(desk)) {
		r.DeskEvents += desk[id]
		if desk[id] > 1 {
			r.DeskDuplicated++
			addExample(&r.DeskExamples, fmt.Sprintf("%s added %d times", id, desk[id]))
		}
	}
	for _, id := range acked {
		if desk[id] > 0 {
			r.Desk++
		} else {
			r.DeskMissing++
			addExample(&r.DeskExamples, id+" missing")
		}
	}

	if r.DeadLetters, err = c.DeadLetters.ListDeadLetters(ctx, bus.DeadLetterFilter{}); err != nil {
		return r, err
	}
	return r, nil
}
