-- The logoutURL a meeting was created with (after the default and override parameters): where
-- a browser goes when the balancer refuses a join to it, as bbb-web 2.7 does.
ALTER TABLE meetings ADD COLUMN logout_url TEXT;
