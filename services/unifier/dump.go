package unifier

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/omnibus-dev/omnibus/services/unifier/internal/store"
)

// Dump returns a canonical text dump of the session store (customers, identities, merges,
// conversations, messages, tool results): a rebuilt store equals the live one when the dumps
// are equal.
func Dump(ctx context.Context, pool *pgxpool.Pool) (string, error) { return store.Dump(ctx, pool) }
