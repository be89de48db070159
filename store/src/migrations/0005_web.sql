-- The operator's web: accounts, their sessions and the audit log.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,                 -- argon2id PHC string
    role          TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
    created_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,                 -- hex sha256 of the cookie's token
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf       TEXT NOT NULL,                    -- the token every form of this session carries
    expires_at INTEGER NOT NULL                  -- ms since epoch
) WITHOUT ROWID;
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE audit (
    id     INTEGER PRIMARY KEY,
    at     INTEGER NOT NULL,
    actor  TEXT NOT NULL,                        -- user name, or "cli" for the admin CLI
    action TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
