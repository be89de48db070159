-- Whether the X-Forwarded-For of an integration's signed calls names the end user for
-- placement (Mconf: the front-end passes its user's address). On by default.
ALTER TABLE integrations ADD COLUMN forwarded_for INTEGER NOT NULL DEFAULT 1;
