-- Accounts. Ids are UUIDv7 strings (time-ordered, so inserts append to the
-- primary key index). The UNIQUE constraint on email is what makes sign-up
-- race-free: two concurrent registrations of one address cannot both
-- commit, and the loser's unique violation becomes a 409.
CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    -- Normalised (trimmed, lowercased) before it gets here; see domain.rs.
    email          TEXT NOT NULL UNIQUE,
    display_name   TEXT NOT NULL,
    -- Argon2id PHC string: algorithm, parameters and salt travel with the
    -- hash, so parameters can be raised later without breaking old rows.
    password_hash  TEXT NOT NULL,
    -- RFC 3339 UTC with milliseconds.
    created_at     TEXT NOT NULL
);
