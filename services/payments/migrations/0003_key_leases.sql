-- A claim on an Idempotency-Key is a lease (charges.rs). The request that
-- owns an in-progress key names itself (`owner`, one id per request) and
-- renews `heartbeat_at` while it works; a key whose heartbeat has stopped
-- (its replica was killed mid-charge) is taken over by the next request
-- with that key and body, instead of answering 409 for ever. Only the
-- owner may complete or release the key, so an owner that was merely slow
-- cannot overwrite what its successor recorded.
ALTER TABLE idempotency_keys ADD COLUMN owner TEXT NULL;
ALTER TABLE idempotency_keys ADD COLUMN heartbeat_at TEXT NULL;
