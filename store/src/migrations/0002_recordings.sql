-- Recordings found on the nodes, owned by the integration whose meeting produced them.
CREATE TABLE recordings (
    record_id      TEXT PRIMARY KEY,
    integration_id INTEGER NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    node_id        INTEGER REFERENCES nodes (id) ON DELETE SET NULL,
    meeting_id     TEXT NOT NULL,
    state          TEXT NOT NULL,
    start_time     INTEGER NOT NULL DEFAULT 0,
    xml            TEXT NOT NULL,               -- the node's <recording> element
    seen_at        INTEGER NOT NULL
);
CREATE INDEX recordings_integration ON recordings (integration_id, start_time);
CREATE INDEX recordings_meeting ON recordings (meeting_id);
