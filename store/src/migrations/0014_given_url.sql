-- A node's URL as the operator (or its agent) gave it, which Scalelite's management API and the
-- CLI show; `url` keeps the API base the balancer calls and compares.
ALTER TABLE nodes ADD COLUMN given_url TEXT;
