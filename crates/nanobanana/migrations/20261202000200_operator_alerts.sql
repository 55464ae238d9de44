-- What the admins (ADMIN_IDS) were told by a reconciler, one row per thing that needs the
-- operator (a refund handed over, a refund stuck, a paid picture queued again): a later pass
-- finding the same thing tells nobody again. Owner: outbox (alerts).
CREATE TABLE operator_alerts (
    kind text NOT NULL,
    subject text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, subject)
);
