-- The payment audit trail (DESIGN §3): every raw provider notification and every API answer
-- the service acted on, as received. Append-only; nothing reads it to decide anything.
CREATE TABLE payment_events (
    id          BIGSERIAL PRIMARY KEY,
    provider    TEXT NOT NULL CHECK (provider IN ('yookassa', 'stars')),
    -- 'notification' (what a webhook body said) or 'api' (what GET answered).
    source      TEXT NOT NULL CHECK (source IN ('notification', 'api')),
    event       TEXT,
    object_id   TEXT,
    remote_addr TEXT,
    payload     JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX payment_events_by_object ON payment_events (object_id);
-- The reconciler's scan: charges the provider has not finalized yet.
CREATE INDEX payments_unsettled ON payments (updated_at) WHERE status IN ('pending', 'waiting_for_capture');
