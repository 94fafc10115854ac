-- Every payment for a course as its events told progress: captured, and
-- perhaps refunded. An enrollment's status is derived from its payments
-- (events.rs), so the events may come in any order: a refund before its
-- capture, a second purchase's capture before the first one's refund.
CREATE TABLE enrollment_payments (
    payment_id    TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL,
    course_id     TEXT NOT NULL,
    captured_at   TEXT NULL,
    refunded_at   TEXT NULL
);

CREATE INDEX enrollment_payments_by_enrollment ON enrollment_payments (user_id, course_id);

-- Enrollments bought before this table existed: their payment as their
-- status says it was.
INSERT INTO enrollment_payments (payment_id, user_id, course_id, captured_at, refunded_at)
SELECT payment_id, user_id, course_id, enrolled_at,
       CASE WHEN status = 'refunded' THEN enrolled_at END
FROM enrollments
WHERE payment_id IS NOT NULL AND status IN ('active', 'refunded');
