-- Nodes: the BBB servers of the pool.
CREATE TABLE nodes (
    id               INTEGER PRIMARY KEY,
    name             TEXT NOT NULL UNIQUE,
    url              TEXT NOT NULL UNIQUE,   -- API base, ends in /bigbluebutton/api
    secret           TEXT NOT NULL,
    state            TEXT NOT NULL DEFAULT 'enabled' CHECK (state IN ('enabled', 'cordoned', 'disabled')),
    online           INTEGER NOT NULL DEFAULT 0,
    healthy_streak   INTEGER NOT NULL DEFAULT 0,
    unhealthy_streak INTEGER NOT NULL DEFAULT 0,
    load_multiplier  REAL NOT NULL DEFAULT 1.0,
    tags             TEXT NOT NULL DEFAULT '',   -- comma list
    meetings         INTEGER NOT NULL DEFAULT 0,
    users            INTEGER NOT NULL DEFAULT 0,
    largest_meeting  INTEGER NOT NULL DEFAULT 0,
    videos           INTEGER NOT NULL DEFAULT 0,
    voice            INTEGER NOT NULL DEFAULT 0,
    polled_at        INTEGER,                    -- ms since epoch
    created_at       INTEGER NOT NULL
);

-- Integrations: the institutions (Scalelite tenants), each with its own secrets and plan.
CREATE TABLE integrations (
    id                INTEGER PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE,
    api_enabled       INTEGER NOT NULL DEFAULT 1,
    recording_allowed INTEGER NOT NULL DEFAULT 1,
    max_meetings      INTEGER,                   -- NULL = unlimited
    max_users         INTEGER,
    created_at        INTEGER NOT NULL
);

CREATE TABLE integration_secrets (
    integration_id INTEGER NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    secret         TEXT NOT NULL UNIQUE,
    position       INTEGER NOT NULL DEFAULT 0    -- 0 = primary (its 5-char prefix is the mobile salt)
);

-- Meetings the balancer placed and still believes to exist.
CREATE TABLE meetings (
    meeting_id          TEXT PRIMARY KEY,
    integration_id      INTEGER NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    node_id             INTEGER NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    internal_meeting_id TEXT NOT NULL DEFAULT '',
    name                TEXT NOT NULL DEFAULT '',
    created_at          INTEGER NOT NULL,
    client_ip           TEXT,
    placement_reason    TEXT NOT NULL DEFAULT '',
    info_xml            TEXT                     -- the node's last <meeting> for this meeting
);
CREATE INDEX meetings_node ON meetings (node_id);
CREATE INDEX meetings_integration ON meetings (integration_id);

-- Everything that happened, for getMeetingEvents and usage reports.
CREATE TABLE events (
    id             INTEGER PRIMARY KEY,
    at             INTEGER NOT NULL,            -- ms since epoch
    kind           TEXT NOT NULL,
    integration_id INTEGER,
    meeting_id     TEXT,
    node_id        INTEGER,
    data           TEXT NOT NULL DEFAULT '{}'   -- JSON
);
CREATE INDEX events_meeting ON events (meeting_id, at);
CREATE INDEX events_at ON events (at);
