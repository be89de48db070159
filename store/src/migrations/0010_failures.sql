-- Failed logins and API checksums, written only when several balancers share the database:
-- each balancer counts the failures the others saw too, so a guesser gains nothing by
-- spreading attempts over them. Rows older than an hour are pruned.
CREATE TABLE failures (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    limiter  TEXT NOT NULL,              -- login, checksum
    client   TEXT,                       -- the client's address
    scope    INTEGER,                    -- the integration the request named
    at       INTEGER NOT NULL,           -- ms since epoch
    instance TEXT NOT NULL               -- the balancer that saw it
);
CREATE INDEX failures_at ON failures (at);
