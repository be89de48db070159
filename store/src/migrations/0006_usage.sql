-- Usage per integration and UTC day, accumulated by the poller: participant-seconds (users ×
-- time between polls) and the peak of concurrent users. Meetings come from the events and
-- recordings from the recordings table.
CREATE TABLE usage_daily (
    integration_id      INTEGER NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    day                 TEXT NOT NULL,               -- YYYY-MM-DD (UTC)
    participant_seconds REAL NOT NULL DEFAULT 0,
    peak_users          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (integration_id, day)
) WITHOUT ROWID;
CREATE INDEX events_kind_integration ON events (kind, integration_id, at);
