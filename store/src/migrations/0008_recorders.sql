-- An integration's recording server (conflux-recorder): its base URL and RSA public key (PEM,
-- 3072 bits or more), with the key's fingerprint for display.
ALTER TABLE integrations ADD COLUMN recorder_url TEXT;
ALTER TABLE integrations ADD COLUMN recorder_key TEXT;
ALTER TABLE integrations ADD COLUMN recorder_fingerprint TEXT;
