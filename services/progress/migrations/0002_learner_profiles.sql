-- A learner's profile as progress knows it, created from users'
-- `user.registered` event (docs/events.md): who they are, without asking
-- users on every read.
CREATE TABLE learner_profiles (
    user_id        TEXT PRIMARY KEY,
    display_name   TEXT NOT NULL,
    registered_at  TEXT NOT NULL,
    created_at     TEXT NOT NULL
);
