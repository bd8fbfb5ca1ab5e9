-- +goose Up
-- The knowledge base (package kb): articles agents answer from and AI suggestions are grounded
-- in. Source data the desk owns, not a projection of the log: Reset (DESK_REBUILD) leaves it
-- alone, and it is backed up with the database. search holds kb.Terms of the title (weight A),
-- the tags (B) and the body (D) with their positions, made in Go (store.vector).
CREATE TABLE desk.kb_articles (
    id         uuid PRIMARY KEY,
    title      text NOT NULL,
    body       text NOT NULL,
    tags       text[] NOT NULL DEFAULT '{}',
    language   text NOT NULL CHECK (language IN ('zh', 'en')),
    search     tsvector NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL DEFAULT ''
);
CREATE INDEX kb_articles_search ON desk.kb_articles USING gin (search);
CREATE INDEX kb_articles_updated ON desk.kb_articles (updated_at DESC);

-- One row once the demo articles were written (DESK_KB_SEED): deleting them all does not bring
-- them back.
CREATE TABLE desk.kb_seeded (
    id int PRIMARY KEY CHECK (id = 1),
    at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE desk.kb_seeded;
DROP TABLE desk.kb_articles;
