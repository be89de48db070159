-- Every change of a node's check state, for the alert history (/alerts): kept 90 days.
CREATE TABLE check_changes (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    node_id  INTEGER NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    name     TEXT NOT NULL,
    state    TEXT NOT NULL,
    previous TEXT,
    output   TEXT NOT NULL,
    at       INTEGER NOT NULL
);
CREATE INDEX check_changes_at ON check_changes (at);
