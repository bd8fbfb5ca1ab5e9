-- +goose Up
-- Canned responses (omni.desk.canned.saved / .deleted): shared (owner '') or an agent's own; an
-- agent inserts one by its shortcut, its own before a shared one of the same shortcut.
CREATE TABLE desk.canned (
    canned_id  uuid PRIMARY KEY,
    owner      text NOT NULL DEFAULT '',
    shortcut   text NOT NULL,
    title      text NOT NULL,
    text       text NOT NULL,
    updated_by text NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX canned_owner_shortcut ON desk.canned (owner, shortcut);

-- +goose Down
DROP TABLE desk.canned;
