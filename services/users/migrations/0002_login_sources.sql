-- Where each account has logged in from lately: the client addresses
-- (an IPv6 client by its /64) of its successful logins. While an
-- account is being guessed at from many addresses at once (the ceiling
-- of failed logins per account is reached), only these may still try;
-- see src/lockout.rs.
--
-- Bounded: at most 8 rows per account (the most recent), none older
-- than 30 days once the account logs in again (src/db.rs prunes on each
-- new source). One upsert per login decides a race between two logins
-- from the same new source (INSERT ... ON CONFLICT).
CREATE TABLE login_sources (
    user_id        TEXT NOT NULL,
    source         TEXT NOT NULL,
    -- RFC 3339 UTC with milliseconds, as users.created_at.
    last_login_at  TEXT NOT NULL,
    PRIMARY KEY (user_id, source)
);
