-- Payments and the idempotency keys that guard them. Ids are uuid v7 text,
-- times RFC 3339 UTC text with fixed microsecond width (so text order is
-- time order), money BIGINT cents: sqlx's Any driver decodes SQLite and
-- PostgreSQL alike as i64 only from 64-bit columns.
CREATE TABLE payments (
    id                  TEXT PRIMARY KEY,
    user_id             TEXT NOT NULL,
    course_id           TEXT NOT NULL,
    amount_cents        BIGINT NOT NULL CHECK (amount_cents > 0),
    currency            TEXT NOT NULL,
    -- 'captured' or 'declined'.
    status              TEXT NOT NULL,
    -- Set when status = 'declined': insufficient_funds, card_declined, expired_card.
    decline_reason      TEXT NULL,
    provider_reference  TEXT NULL,
    -- At most one payment per key, whatever happens above the database.
    idempotency_key     TEXT NOT NULL UNIQUE,
    created_at          TEXT NOT NULL
);

-- "A user's payments, newest first" is the listing's only access path.
CREATE INDEX payments_by_user ON payments (user_id, created_at);

-- One row per Idempotency-Key. Inserting it is the atomic claim: the primary
-- key lets exactly one of several concurrent requests with the same key win,
-- before anyone calls the provider.
CREATE TABLE idempotency_keys (
    key           TEXT PRIMARY KEY,
    -- SHA-256 (hex) of the canonical request body: the same key with another
    -- body is a client bug, not a retry.
    request_hash  TEXT NOT NULL,
    -- 'in_progress' while the owner calls the provider, then 'completed'.
    state         TEXT NOT NULL,
    payment_id    TEXT NULL,
    created_at    TEXT NOT NULL
);
