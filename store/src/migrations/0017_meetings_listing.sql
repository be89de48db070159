-- getMeetings reads an integration's stored <meeting> elements oldest first: walked in this
-- index's order instead of sorted (a sort held tens of MB of elements at 10,000 meetings).
CREATE INDEX meetings_listing ON meetings (integration_id, created_at);
DROP INDEX meetings_integration;
