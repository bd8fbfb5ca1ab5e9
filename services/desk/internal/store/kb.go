package store

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/omnibus-dev/omnibus/services/desk/internal/kb"
)

// Article is a knowledge-base article.
type Article struct {
	ID        string    `json:"id"`
	Title     string    `json:"title"`
	Body      string    `json:"body"`
	Tags      []string  `json:"tags"`
	Language  string    `json:"language"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	UpdatedBy string    `json:"updated_by,omitempty"`
	// Rank is the search rank (SearchArticles only).
	Rank float32 `json:"rank,omitempty"`
}

const articleCols = `id::text, title, body, tags, language, created_at, updated_at, updated_by`

func scanArticle(r pgx.Row, rank bool) (Article, error) {
	var a Article
	dest := []any{&a.ID, &a.Title, &a.Body, &a.Tags, &a.Language, &a.CreatedAt, &a.UpdatedAt, &a.UpdatedBy}
	if rank {
		dest = append(dest, &a.Rank)
	}
	err := r.Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, ErrNotFound
	}
	return a, err
}

// searchVector is the SQL of an article's tsvector ($2, articleArgs): its literal is written
// here, not parsed from text by Postgres, so the terms stay as kb.Terms made them.
const searchVector = `$2::tsvector`

// vector returns the tsvector literal of an article's terms: each with its positions and a
// weight, A for the title's, B for the tags', D for the body's (ts_rank weighs them 1, 0.4 and
// 0.1). Positions, not only lexemes, are what carry weights. Terms are letters and digits only,
// so they need no escaping.
func vector(a kb.Article) string {
	pos := map[string][]string{}
	var order []string
	n := 0
	for _, part := range []struct {
		text, weight string
	}{{a.Title, "A"}, {strings.Join(a.Tags, " "), "B"}, {a.Body, ""}} {
		for _, t := range kb.Terms(part.text) {
			if n++; n > 16383 { // the largest position
				break
			}
			if _, ok := pos[t]; !ok {
				order = append(order, t)
			}
			pos[t] = append(pos[t], strconv.Itoa(n)+part.weight)
		}
	}
	var b strings.Builder
	for i, t := range order {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("'" + t + "':" + strings.Join(pos[t], ","))
	}
	return b.String()
}

// PutArticle writes an article: a new one when id is "" (its id is made here), else it replaces
// article id, or ErrNotFound. It returns the article as stored.
func (s *Store) PutArticle(ctx context.Context, id string, a kb.Article, by string) (Article, error) {
	if id == "" {
		return insertArticle(ctx, s.pool, a, by)
	}
	if _, err := uuid.Parse(id); err != nil {
		return Article{}, ErrNotFound
	}
	return scanArticle(s.pool.QueryRow(ctx, `UPDATE desk.kb_articles SET search = `+searchVector+`, title = $3, body = $4, tags = $5,
		language = $6, updated_by = $7, updated_at = now() WHERE id = $1 RETURNING `+articleCols, articleArgs(id, a, by)...), false)
}

// articleArgs are the arguments of the article's id ($1), searchVector ($2) and columns ($3
// title, $4 body, $5 tags, $6 language, $7 the author).
func articleArgs(id string, a kb.Article, by string) []any {
	if a.Tags == nil {
		a.Tags = []string{}
	}
	return []any{id, vector(a), a.Title, a.Body, a.Tags, a.Language, by}
}

// insertArticle inserts a new article through q (the pool or a transaction).
func insertArticle(ctx context.Context, q interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}, a kb.Article, by string) (Article, error) {
	return scanArticle(q.QueryRow(ctx, `INSERT INTO desk.kb_articles (id, search, title, body, tags, language, updated_by)
		VALUES ($1, `+searchVector+`, $3, $4, $5, $6, $7) RETURNING `+articleCols, articleArgs(uuid.NewString(), a, by)...), false)
}

// GetArticle returns one article, or ErrNotFound.
func (s *Store) GetArticle(ctx context.Context, id string) (Article, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Article{}, ErrNotFound
	}
	return scanArticle(s.pool.QueryRow(ctx, `SELECT `+articleCols+` FROM desk.kb_articles WHERE id = $1`, id), false)
}

// DeleteArticle deletes one article, or returns ErrNotFound.
func (s *Store) DeleteArticle(ctx context.Context, id string) error {
	if _, err := uuid.Parse(id); err != nil {
		return ErrNotFound
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM desk.kb_articles WHERE id = $1`, id)
	if err == nil && tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return err
}

// Articles returns up to limit articles, the last updated first, of language when it is not "".
func (s *Store) Articles(ctx context.Context, language string, limit int) ([]Article, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+articleCols+` FROM desk.kb_articles WHERE $1 = '' OR language = $1
		ORDER BY updated_at DESC, id LIMIT $2`, language, limit)
	if err != nil {
		return nil, err
	}
	return collectArticles(rows, false)
}

// SearchArticles returns up to limit articles that share a term (kb.Terms) with text, the best
// first: ts_rank over the title (A), tags (B) and body (D) terms, normalised by the article's
// length; articles in language (when not "") before others of equal rank.
func (s *Store) SearchArticles(ctx context.Context, text, language string, limit int) ([]Article, error) {
	terms := kb.Terms(text)
	if len(terms) == 0 {
		return []Article{}, nil
	}
	// Terms are letters and digits only (fuzzed), so quoting them makes tsquery literals.
	q := "'" + strings.Join(terms, "' | '") + "'"
	rows, err := s.pool.Query(ctx, `SELECT `+articleCols+`, ts_rank(search, q, 1) AS rank
		FROM desk.kb_articles, CAST($1 AS tsquery) q WHERE search @@ q
		ORDER BY rank DESC, (language = $2) DESC, updated_at DESC LIMIT $3`, q, language, limit)
	if err != nil {
		return nil, err
	}
	return collectArticles(rows, true)
}

func collectArticles(rows pgx.Rows, rank bool) ([]Article, error) {
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Article, error) { return scanArticle(r, rank) })
	if out == nil {
		out = []Article{}
	}
	return out, err
}

// SeedArticles writes articles into a knowledge base that was never seeded, once: it reports
// whether it did.
func (s *Store) SeedArticles(ctx context.Context, articles []kb.Article) (bool, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return false, err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	tag, err := tx.Exec(ctx, `INSERT INTO desk.kb_seeded (id, at) VALUES (1, now()) ON CONFLICT DO NOTHING`)
	if err != nil || tag.RowsAffected() == 0 {
		return false, err
	}
	for _, a := range articles {
		if _, err := insertArticle(ctx, tx, a, "seed"); err != nil {
			return false, err
		}
	}
	return true, tx.Commit(ctx)
}
