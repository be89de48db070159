-- Monitoring and geo placement: where a node is, the admin's override of automatic disabling,
-- the TCP ports checked, the key its agent signs reports with, check states, the latest report
-- and the metric history (RRD-like: raw, 5-minute and hourly rows holding running means).
ALTER TABLE nodes ADD COLUMN latitude REAL;
ALTER TABLE nodes ADD COLUMN longitude REAL;
ALTER TABLE nodes ADD COLUMN forced TEXT CHECK (forced IN ('enabled', 'disabled'));
ALTER TABLE nodes ADD COLUMN ports TEXT NOT NULL DEFAULT '';   -- comma list; '' = monitor.ports
ALTER TABLE nodes ADD COLUMN agent_key TEXT;                   -- hex HMAC key issued at enrolment

CREATE TABLE node_checks (
    node_id    INTEGER NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('OK', 'WARNING', 'CRITICAL', 'UNKNOWN')),
    output     TEXT NOT NULL DEFAULT '',
    since      INTEGER NOT NULL,     -- ms since epoch of the last state change
    checked_at INTEGER NOT NULL,
    PRIMARY KEY (node_id, name)
) WITHOUT ROWID;

CREATE TABLE node_reports (
    node_id     INTEGER PRIMARY KEY REFERENCES nodes (id) ON DELETE CASCADE,
    received_at INTEGER NOT NULL,
    signed_at   INTEGER NOT NULL,    -- the agent's timestamp: later reports must be newer
    report      TEXT NOT NULL        -- JSON (conflux_shared::report::Report)
);

CREATE TABLE history (
    node_id    INTEGER NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    resolution INTEGER NOT NULL,     -- seconds per row: 0 = raw, 300, 3600
    ts         INTEGER NOT NULL,     -- s since epoch (bucket start)
    n          INTEGER NOT NULL,     -- reports averaged into the row
    cpu        REAL,
    memory     REAL,                 -- % used
    disk       REAL,                 -- % used, fullest mount
    net_in     REAL,                 -- bytes/s
    net_out    REAL,
    meetings   REAL,
    users      REAL,
    voice      REAL,
    video      REAL,
    PRIMARY KEY (node_id, resolution, ts)
) WITHOUT ROWID;
