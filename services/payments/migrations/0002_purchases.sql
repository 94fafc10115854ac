-- One purchase per learner and course. A charge claims its (user, course)
-- pair here before the provider is called, so two checkouts of one course
-- with different Idempotency-Keys cannot both charge: the second finds
-- the pair claimed (in flight) or bought (`payment_id` set). A decline, a
-- provider failure or a refund gives the pair back, so buying again after
-- a refund works.
CREATE TABLE purchases (
    user_id          TEXT NOT NULL,
    course_id        TEXT NOT NULL,
    -- The key of the charge holding the claim.
    idempotency_key  TEXT NOT NULL,
    -- The captured payment, once there is one.
    payment_id       TEXT NULL,
    claimed_at       TEXT NOT NULL,
    PRIMARY KEY (user_id, course_id)
);

CREATE INDEX purchases_by_payment ON purchases (payment_id);

-- Payments captured before this table existed own their pair, the newest
-- one if there were several (they could be, then).
INSERT INTO purchases (user_id, course_id, idempotency_key, payment_id, claimed_at)
SELECT p.user_id, p.course_id, p.idempotency_key, p.id, p.created_at
FROM payments p
WHERE p.status = 'captured'
  AND p.id = (SELECT q.id FROM payments q
              WHERE q.user_id = p.user_id AND q.course_id = p.course_id AND q.status = 'captured'
              ORDER BY q.created_at DESC, q.id DESC LIMIT 1);
