package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Note is a private note on a conversation (omni.desk.note.added): for agents, never sent to
// the customer.
type Note struct {
	NoteID         string    `json:"note_id"`
	ConversationID string    `json:"conversation_id"`
	Author         string    `json:"author"`
	Text           string    `json:"text"`
	Mentions       []string  `json:"mentions"`
	At             time.Time `json:"at"`
}

// ApplyNote stores a note once; isNew is false for a redelivery.
func (s *Store) ApplyNote(ctx context.Context, n Note) (isNew bool, err error) {
	if n.Mentions == nil {
		n.Mentions = []string{}
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO desk.notes (note_id, conversation_id, author, text, mentions, at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (note_id) DO NOTHING`,
		n.NoteID, n.ConversationID, n.Author, n.Text, n.Mentions, n.At)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// Notes lists a conversation's notes, oldest first.
func (s *Store) Notes(ctx context.Context, conversationID string) ([]Note, error) {
	rows, err := s.pool.Query(ctx, `SELECT note_id::text, conversation_id::text, author, text, mentions, at
		FROM desk.notes WHERE conversation_id::text = $1 ORDER BY at`, conversationID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Note, error) {
		var n Note
		return n, r.Scan(&n.NoteID, &n.ConversationID, &n.Author, &n.Text, &n.Mentions, &n.At)
	})
}
