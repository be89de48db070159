-- Recordings that travel as encrypted archives to their institution's recording server
-- (conflux-recorder). `archive` is NULL for recordings the poller finds on nodes; otherwise
-- stored (at the balancer, waiting for the recorder), done (the recorder has it), failed (the
-- recorder refused it; the archive is kept for inspection) or deleted.
ALTER TABLE recordings ADD COLUMN archive TEXT;
ALTER TABLE recordings ADD COLUMN archive_size INTEGER;
ALTER TABLE recordings ADD COLUMN archive_sha256 TEXT;
-- The node still holding its copy; cleared when the agent says it dropped it.
ALTER TABLE recordings ADD COLUMN archive_node INTEGER;
ALTER TABLE recordings ADD COLUMN protected INTEGER NOT NULL DEFAULT 0;
ALTER TABLE recordings ADD COLUMN failure TEXT;
ALTER TABLE recordings ADD COLUMN end_time INTEGER NOT NULL DEFAULT 0;
CREATE INDEX recordings_archive_node ON recordings (archive_node) WHERE archive_node IS NOT NULL;
CREATE INDEX recordings_integration_state ON recordings (integration_id, state, start_time);

-- What each recording server applies, in order: new archives, publish, protect, update, delete.
CREATE TABLE recorder_feed (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    integration_id INTEGER NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    record_id      TEXT NOT NULL,
    change         TEXT NOT NULL,               -- JSON of conflux_shared::transfer::Change
    at             INTEGER NOT NULL
);
CREATE INDEX recorder_feed_integration ON recorder_feed (integration_id, seq);

-- Delete an integration's recordings this many days after they ended (NULL = keep).
ALTER TABLE integrations ADD COLUMN retention_days INTEGER;
