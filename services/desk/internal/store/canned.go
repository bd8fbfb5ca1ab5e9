package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Canned is a canned response (omni.desk.canned.saved): Owner is the agent whose own it is, ""
// when shared with every agent.
type Canned struct {
	CannedID string    `json:"canned_id"`
	Owner    string    `json:"owner"`
	Shortcut string    `json:"shortcut"`
	Title    string    `json:"title"`
	Text     string    `json:"text"`
	By       string    `json:"by"`
	At       time.Time `json:"at"`
}

// CannedDeleted is the data of omni.desk.canned.deleted.
type CannedDeleted struct {
	CannedID string    `json:"canned_id"`
	By       string    `json:"by"`
	At       time.Time `json:"at"`
}

// ErrShortcutTaken is returned by ApplyCanned when another response of the owner has the
// shortcut (two saves raced past the API's check): the later one is dropped.
var ErrShortcutTaken = errors.New("shortcut taken")

// ApplyCanned stores a saved canned response unless a later save of it is already stored.
func (s *Store) ApplyCanned(ctx context.Context, c Canned) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO desk.canned (canned_id, owner, shortcut, title, text, updated_by, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (canned_id) DO UPDATE SET owner = EXCLUDED.owner, shortcut = EXCLUDED.shortcut, title = EXCLUDED.title,
			text = EXCLUDED.text, updated_by = EXCLUDED.updated_by, updated_at = EXCLUDED.updated_at
		WHERE desk.canned.updated_at <= EXCLUDED.updated_at`, c.CannedID, c.Owner, c.Shortcut, c.Title, c.Text, c.By, c.At)
	if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return ErrShortcutTaken
	}
	return err
}

// ApplyCannedDeleted deletes a canned response.
func (s *Store) ApplyCannedDeleted(ctx context.Context, d CannedDeleted) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM desk.canned WHERE canned_id::text = $1`, d.CannedID)
	return err
}

// CannedFor lists the canned responses agent may use, by shortcut: its own, and the shared ones
// whose shortcut it has not taken for one of its own.
func (s *Store) CannedFor(ctx context.Context, agent string) ([]Canned, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT ON (shortcut) canned_id::text, owner, shortcut, title, text, updated_by, updated_at
		FROM desk.canned WHERE owner = '' OR owner = $1 ORDER BY shortcut, owner DESC`, agent)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanCanned)
}

// GetCanned returns one canned response.
func (s *Store) GetCanned(ctx context.Context, id string) (Canned, error) {
	rows, err := s.pool.Query(ctx, `SELECT canned_id::text, owner, shortcut, title, text, updated_by, updated_at
		FROM desk.canned WHERE canned_id::text = $1`, id)
	if err != nil {
		return Canned{}, err
	}
	c, err := pgx.CollectExactlyOneRow(rows, scanCanned)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, ErrNotFound
	}
	return c, err
}

// CannedShortcutOwner returns the id of owner's response with shortcut, "" when there is none.
func (s *Store) CannedShortcutOwner(ctx context.Context, owner, shortcut string) (string, error) {
	var id string
	err := s.pool.QueryRow(ctx, `SELECT canned_id::text FROM desk.canned WHERE owner = $1 AND shortcut = $2`, owner, shortcut).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return id, err
}

func scanCanned(r pgx.CollectableRow) (Canned, error) {
	var c Canned
	return c, r.Scan(&c.CannedID, &c.Owner, &c.Shortcut, &c.Title, &c.Text, &c.By, &c.At)
}
