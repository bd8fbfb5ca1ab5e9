// Package store owns the unifier's Postgres schema and every statement the unifier sends it:
// embedded, versioned migrations applied with goose at start; the reads and writes of the
// engine's rounds (read.go, write.go), typed and marshalled here so that the engine holds only
// the domain rules; and the canonical dump that proves a rebuilt store equals the live one.
//
// The functions queue statements on a pgx.Batch (one round trip for many of them) or run them
// on a pgx.Tx; none begins or commits a transaction.
package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate applies every pending migration to the database at url. It is safe to run from several
// replicas at once: goose takes a Postgres advisory lock.
func Migrate(ctx context.Context, url string) error {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	db := stdlib.OpenDB(*cfg.ConnConfig)
	defer db.Close()
	return MigrateDB(ctx, db)
}

// MigrateDB applies every pending migration through db.
func MigrateDB(ctx context.Context, db *sql.DB) error {
	p, err := provider(db)
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// MigrateDBTo applies or rolls back migrations through db until the schema is at version (tests
// of a migration start from the version before it).
func MigrateDBTo(ctx context.Context, db *sql.DB, version int64) error {
	p, err := provider(db)
	if err != nil {
		return err
	}
	cur, err := p.GetDBVersion(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if cur > version {
		_, err = p.DownTo(ctx, version)
	} else {
		_, err = p.UpTo(ctx, version)
	}
	if err != nil {
		return fmt.Errorf("migrate to %d: %w", version, err)
	}
	return nil
}

func provider(db *sql.DB) (*goose.Provider, error) {
	sub, err := fsSub()
	if err != nil {
		return nil, err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub, goose.WithSessionLocker(mustLocker()))
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return p, nil
}
