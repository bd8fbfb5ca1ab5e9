// Package store owns the desk's read model: the Postgres schema "desk" (embedded goose
// migrations, applied at start), the projection writes that turn events into rows, and the
// queries every page and API answer is served from. It never reads another service's tables.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
	"github.com/pressly/goose/v3/lock"

	"github.com/omnibus-dev/omnibus/pkg/pii"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the Postgres schema the desk's tables live in.
const Schema = "desk"

// lockID is the advisory lock goose holds while migrating the desk schema (not the unifier's).
const lockID = 0x6465736b // "desk"

// ErrNotFound is returned by the queries of one row when it does not exist.
var ErrNotFound = errors.New("not found")

// Migrate creates the desk schema and applies every pending migration to the database at url.
// Safe to run from several replicas at once (goose holds an advisory lock).
func Migrate(ctx context.Context, url string) error {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("desk migrate: %w", err)
	}
	db := stdlib.OpenDB(*cfg.ConnConfig)
	defer db.Close()
	return MigrateDB(ctx, db)
}

// MigrateDB is Migrate through db.
func MigrateDB(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS `+Schema); err != nil {
		return fmt.Errorf("desk migrate: %w", err)
	}
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	st, err := database.NewStore(database.DialectPostgres, Schema+".goose_db_version")
	if err != nil {
		return fmt.Errorf("desk migrate: %w", err)
	}
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(lockID))
	if err != nil {
		return fmt.Errorf("desk migrate: %w", err)
	}
	p, err := goose.NewProvider("", db, sub, goose.WithStore(st), goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("desk migrate: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("desk migrate: %w", err)
	}
	return nil
}

// Store is the desk's read model.
type Store struct {
	pool   *pgxpool.Pool
	sealer *pii.Events // nil: reply addresses are kept in clear
}

// New returns a Store on pool (migrated with Migrate).
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// SealWith makes the store keep reply addresses of pii.SealedKinds sealed with keys (and open
// them to reply). Call it before the store is used.
func (s *Store) SealWith(keys *pii.Keys) {
	if keys != nil {
		s.sealer = pii.NewEvents(keys)
	}
}

// Ping checks the database.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// inTx runs fn in a transaction.
func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}

// Claim reports whether the store is new (it had never been claimed by a projection) and
// claims it. A new store is filled by replaying the log from the start.
func (s *Store) Claim(ctx context.Context) (bool, error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO desk.projection (id, created_at) VALUES (1, now()) ON CONFLICT DO NOTHING`)
	return tag.RowsAffected() == 1, err
}

// Reset empties every projected table (not the agents seeded from configuration), for a rebuild
// from the log.
func (s *Store) Reset(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `TRUNCATE desk.customers, desk.conversations, desk.messages, desk.addresses,
		desk.tool_requests, desk.tool_results, desk.assignments, desk.merges, desk.alerts, desk.vendor_calls, desk.canary_rollouts, desk.notes, desk.canned`)
	return err
}
