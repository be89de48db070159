-- getRecordings over a large index. recording_meta holds each recording's metadata as
-- getRecordings shows it (keys lower-cased, the balancer's own and BBB's repeated ones left
-- out), so meta_ filters use an index instead of searching every recording's XML; it is filled
-- from the XML of the recordings already stored when this migration runs (migrations.rs).
-- recordings_listing walks an integration's recordings newest first with their state, so a
-- page, however deep, is found in the index before any row is read; it replaces the two
-- indexes that began with the integration.
CREATE TABLE recording_meta (
    record_id      TEXT NOT NULL REFERENCES recordings (record_id) ON DELETE CASCADE,
    integration_id INTEGER NOT NULL,
    key            TEXT NOT NULL,
    value          TEXT NOT NULL,
    PRIMARY KEY (record_id, key)
);
CREATE INDEX recording_meta_value ON recording_meta (integration_id, key, value);
CREATE INDEX recordings_listing ON recordings (integration_id, start_time DESC, record_id, state);
DROP INDEX recordings_integration;
DROP INDEX recordings_integration_state;
