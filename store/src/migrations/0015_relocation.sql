-- Mconf's "location of the first user who joins": a meeting created ahead of time (placed by
-- where the front-end's server is) moves once, before anyone joined, to the node nearest its
-- first user. The create as it was forwarded to the node (when it had no body) is kept for that,
-- and relocated_at marks the one attempt, claimed by the first join that asks.
ALTER TABLE meetings ADD COLUMN create_query TEXT;
ALTER TABLE meetings ADD COLUMN relocated_at BIGINT;
