package store

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/omnibus-dev/omnibus/pkg/identity"
	"github.com/omnibus-dev/omnibus/pkg/pii"
)

// sqlClearValues lists the distinct identities of sealed kinds stored in clear anywhere in the
// store: rows written before personal data was sealed (or while it was not).
const sqlClearValues = `SELECT DISTINCT kind, value FROM (
		SELECT kind, value FROM identities WHERE kind = ANY($1)
		UNION ALL SELECT identity_kind, identity_value FROM messages WHERE identity_kind = ANY($1)
		UNION ALL SELECT from_kind, from_value FROM calls WHERE from_kind = ANY($1)
		UNION ALL SELECT to_kind, to_value FROM calls WHERE to_kind = ANY($1)
		UNION ALL SELECT e->>'kind', e->>'value' FROM customer_merges, jsonb_array_elements(moved_identities) e
			WHERE e->>'kind' = ANY($1)
	) v WHERE value NOT LIKE '~%'`

// SealClear converts what the store holds in clear of the identities of pii.SealedKinds to the
// sealed form the engine writes with keys: each value becomes its identity.Indexed key (in
// identities, messages, calls and customer merges, in one transaction, so that matching goes on
// across the change) and the identities row gets its ciphertext; tool results get their
// identities sealed as the log holds them. A value that does not normalise (a call's other party
// as dialled) is replaced by its mask. It returns how many distinct values it converted; run at
// every start with keys, it finds nothing to do after the first.
func SealClear(ctx context.Context, pool *pgxpool.Pool, keys *pii.Keys) (int, error) {
	var kinds []string
	for k := range pii.SealedKinds {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	var n int
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sqlClearValues, kinds)
		if err != nil {
			return err
		}
		var ks, olds, news, sealed []string
		var norm identity.Normalizer
		for rows.Next() {
			var kind, value string
			if err := rows.Scan(&kind, &value); err != nil {
				rows.Close()
				return err
			}
			id, err := norm.Normalize(kind, value)
			var key, ct string
			if err != nil {
				key = identity.Mask(identity.ID{Kind: kind, Value: value})
			} else {
				key = identity.Indexed(kind, keys.BlindIndex(kind, id.Value), identity.Mask(id)).Value
				if ct, err = keys.Encrypt(id.Value); err != nil {
					rows.Close()
					return err
				}
			}
			ks, olds, news, sealed = append(ks, kind), append(olds, value), append(news, key), append(sealed, ct)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		n = len(ks)
		if n > 0 {
			if err := applyClearMap(ctx, tx, ks, olds, news, sealed); err != nil {
				return err
			}
		}
		return sealToolResults(ctx, tx, pii.NewEvents(keys))
	})
	if err != nil {
		return 0, fmt.Errorf("seal clear identities: %w", err)
	}
	return n, nil
}

func applyClearMap(ctx context.Context, tx pgx.Tx, kinds, olds, news, sealed []string) error {
	stmts := []string{
		`CREATE TEMP TABLE pii_map ON COMMIT DROP AS
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS m(kind, old, new, sealed)`,
		`UPDATE identities i SET value = m.new, sealed = nullif(m.sealed, '') FROM pii_map m WHERE i.kind = m.kind AND i.value = m.old`,
		`UPDATE messages x SET identity_value = m.new FROM pii_map m WHERE x.identity_kind = m.kind AND x.identity_value = m.old`,
		`UPDATE calls x SET from_value = m.new FROM pii_map m WHERE x.from_kind = m.kind AND x.from_value = m.old`,
		`UPDATE calls x SET to_value = m.new FROM pii_map m WHERE x.to_kind = m.kind AND x.to_value = m.old`,
		`UPDATE customer_merges c SET moved_identities = (
			SELECT jsonb_agg(CASE WHEN m.new IS NULL THEN e ELSE jsonb_build_object('kind', m.kind, 'value', m.new) END ORDER BY o)
			FROM jsonb_array_elements(c.moved_identities) WITH ORDINALITY AS x(e, o)
			LEFT JOIN pii_map m ON m.kind = e->>'kind' AND m.old = e->>'value')
		WHERE EXISTS (SELECT 1 FROM jsonb_array_elements(c.moved_identities) e JOIN pii_map m ON m.kind = e->>'kind' AND m.old = e->>'value')`,
	}
	if _, err := tx.Exec(ctx, stmts[0], kinds, olds, news, sealed); err != nil {
		return err
	}
	for _, s := range stmts[1:] {
		if _, err := tx.Exec(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// sealToolResults seals the identities in the tool results stored in clear.
func sealToolResults(ctx context.Context, tx pgx.Tx, x *pii.Events) error {
	rows, err := tx.Query(ctx, `SELECT event_id, body::text FROM tool_results
		WHERE body::text LIKE '%"kind"%' AND body::text NOT LIKE '%pii:v2:%'`)
	if err != nil {
		return err
	}
	var ids, bodies []string
	for rows.Next() {
		var id, body string
		if err := rows.Scan(&id, &body); err != nil {
			rows.Close()
			return err
		}
		out, err := x.Seal([]byte(body))
		if err != nil {
			continue // not the JSON the store wrote: left as it is
		}
		if string(out) != body {
			ids, bodies = append(ids, id), append(bodies, string(out))
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(ids) == 0 {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE tool_results t SET body = u.body::jsonb FROM unnest($1::text[], $2::text[]) AS u(id, body)
		WHERE t.event_id = u.id`, ids, bodies)
	return err
}
