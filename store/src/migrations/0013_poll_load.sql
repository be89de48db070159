-- Scalelite's load of a node as its last poll computed it, before the load multiplier: per
-- running meeting (breakouts aside) its attendees, at least LOAD_MIN_USER_COUNT while younger
-- than LOAD_JOIN_BUFFER_TIME.
ALTER TABLE nodes ADD COLUMN poll_load REAL NOT NULL DEFAULT 0;
