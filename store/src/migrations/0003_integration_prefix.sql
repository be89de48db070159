-- An optional URL path prefix / host label that names an integration directly, so a request
-- is checked against that integration's secrets only.
ALTER TABLE integrations ADD COLUMN prefix TEXT;
CREATE UNIQUE INDEX integrations_prefix ON integrations (prefix) WHERE prefix IS NOT NULL;
