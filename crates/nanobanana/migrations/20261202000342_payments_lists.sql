-- The panel's lists of charges read `payments` without an index at scale (issue #19's note):
-- with 1,000,000 charges the Payments page took 168–186 ms (a sort of the whole table), its
-- status filter 92–123 ms, and a user's page 162–175 ms (a sequential scan for one user's
-- charges, and the refunds of each by a scan of `refunds`). Newest-first pages now walk an
-- index: the Payments page (created_at, id), a user's charges (user_id, created_at), the refunds
-- of a charge (payment_id: also the audit's joins) and of a user (user_id, created_at). Charges
-- and refunds are written once per payment, so the indexes cost the hot path nothing.
-- The overview's money of a day (`reports::days::compute`: today on every overview, two closed
-- days every 10 minutes) read every charge to find the day's by `COALESCE(processed_at,
-- created_at)`: 144–157 ms at 1,000,000 charges; through `payments_paid_at`, 5–8 ms.
CREATE INDEX payments_newest ON payments (created_at, id);
CREATE INDEX payments_by_user ON payments (user_id, created_at);
CREATE INDEX refunds_by_payment ON refunds (payment_id);
CREATE INDEX refunds_by_user ON refunds (user_id, created_at);
CREATE INDEX payments_paid_at ON payments ((COALESCE(processed_at, created_at))) WHERE status = 'succeeded';
