-- /metrics reads each integration's archives still waiting for its recorder (how many, since
-- when) at every scrape: a small partial index instead of a scan of every recording.
CREATE INDEX recordings_archives_stored ON recordings (integration_id, seen_at) WHERE archive = 'stored';
