-- The seed's six tables (users, balances, topups, payments, generations, transactions) with
-- the constraints that make the money guarantees hold in the database itself (DESIGN §1, §3).
-- Every user_id is the Telegram id, as in the seed (REFERENCES users(telegram_id)).

CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    telegram_id   BIGINT NOT NULL UNIQUE,
    username      VARCHAR(255),
    first_name    VARCHAR(255),
    registered_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    is_active     BOOLEAN NOT NULL DEFAULT TRUE,
    is_premium    BOOLEAN NOT NULL DEFAULT FALSE,
    is_banned     BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE balances (
    id                BIGSERIAL PRIMARY KEY,
    user_id           BIGINT NOT NULL UNIQUE REFERENCES users (telegram_id),
    credits_available BIGINT NOT NULL DEFAULT 0,
    credits_reserved  BIGINT NOT NULL DEFAULT 0,
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT balances_non_negative CHECK (credits_available >= 0 AND credits_reserved >= 0)
);

-- An order for a pack. Amounts in the currency's smallest unit: kopecks (RUB) or Stars (XTR).
CREATE TABLE topups (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      BIGINT NOT NULL REFERENCES users (telegram_id),
    provider     TEXT NOT NULL CHECK (provider IN ('yookassa', 'stars')),
    pack         TEXT NOT NULL,
    currency     TEXT NOT NULL CHECK (currency IN ('RUB', 'XTR')),
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    rub_amount   NUMERIC(12, 2) GENERATED ALWAYS AS
                   (CASE WHEN currency = 'RUB' THEN amount_minor / 100.0 END) STORED,
    credits      BIGINT NOT NULL CHECK (credits > 0),
    status       TEXT NOT NULL DEFAULT 'created'
                   CHECK (status IN ('created', 'pending', 'paid', 'canceled')),
    -- What created it (the update id), so a redelivered update cannot create a second order.
    source_key   TEXT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    paid_at      TIMESTAMPTZ,
    CONSTRAINT topups_provider_currency CHECK ((provider = 'stars') = (currency = 'XTR')),
    CONSTRAINT topups_one_per_source UNIQUE (user_id, source_key)
);

-- One row per provider charge; `payment_id` is the provider's id (YooKassa's payment id,
-- Telegram's telegram_payment_charge_id). `credits` is what this charge is worth.
CREATE TABLE payments (
    id           BIGSERIAL PRIMARY KEY,
    provider     TEXT NOT NULL CHECK (provider IN ('yookassa', 'stars')),
    payment_id   VARCHAR(255) NOT NULL,
    topup_id     UUID NOT NULL REFERENCES topups (id),
    user_id      BIGINT NOT NULL REFERENCES users (telegram_id),
    currency     TEXT NOT NULL CHECK (currency IN ('RUB', 'XTR')),
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    amount       NUMERIC(12, 2) GENERATED ALWAYS AS
                   (CASE WHEN currency = 'RUB' THEN amount_minor / 100.0 ELSE amount_minor END) STORED,
    credits      BIGINT NOT NULL CHECK (credits > 0),
    status       TEXT NOT NULL
                   CHECK (status IN ('pending', 'waiting_for_capture', 'succeeded', 'canceled')),
    raw_payload  JSONB,
    processed_at TIMESTAMPTZ,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT payments_one_per_charge UNIQUE (provider, payment_id)
);

-- A generation is also its job. `cost` is fixed at creation; settlement uses it, never
-- the current price. `lease_epoch` fences every write of whoever holds the job.
CREATE TABLE generations (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      BIGINT NOT NULL REFERENCES users (telegram_id),
    prompt       TEXT NOT NULL,
    settings     JSONB NOT NULL DEFAULT '{}',
    model        TEXT NOT NULL,
    aspect_ratio TEXT NOT NULL DEFAULT '1:1',
    image_size   TEXT,
    status       TEXT NOT NULL DEFAULT 'queued'
                   CHECK (status IN ('queued', 'processing', 'succeeded', 'failed')),
    cost         BIGINT NOT NULL CHECK (cost > 0),
    lease_epoch  BIGINT NOT NULL DEFAULT 0,
    -- The update id or the album's media_group_id.
    source_key   TEXT NOT NULL,
    error        TEXT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at   TIMESTAMPTZ,
    completed_at TIMESTAMPTZ,
    CONSTRAINT generations_one_per_source UNIQUE (user_id, source_key)
);
CREATE INDEX generations_active ON generations (user_id) WHERE status IN ('queued', 'processing');

-- A refund of (part of) one charge. Its credits leave the balance when it is `held` and come
-- back only if it `failed`.
CREATE TABLE refunds (
    id                 UUID PRIMARY KEY,
    payment_id         BIGINT NOT NULL REFERENCES payments (id),
    user_id            BIGINT NOT NULL REFERENCES users (telegram_id),
    credits            BIGINT NOT NULL CHECK (credits > 0),
    amount_minor       BIGINT NOT NULL CHECK (amount_minor > 0),
    status             TEXT NOT NULL DEFAULT 'held' CHECK (status IN ('held', 'succeeded', 'failed')),
    provider_refund_id TEXT,
    reason             TEXT,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The journal: append-only, one row per credit movement, written with the balance change
-- in the same transaction. amount > 0 is the size of the movement; the deltas say where it
-- went; balance_after / reserved_after are the user's balance right after it.
CREATE TABLE transactions (
    id              BIGSERIAL PRIMARY KEY,
    user_id         BIGINT NOT NULL REFERENCES users (telegram_id),
    type            TEXT NOT NULL CHECK (type IN ('topup', 'reserve', 'commit', 'release', 'grant',
                      'deduct', 'refund', 'refund_release', 'bonus')),
    amount          BIGINT NOT NULL CHECK (amount > 0),
    delta_available BIGINT NOT NULL,
    delta_reserved  BIGINT NOT NULL,
    balance_after   BIGINT NOT NULL CHECK (balance_after >= 0),
    reserved_after  BIGINT NOT NULL CHECK (reserved_after >= 0),
    -- Deferred so a generation request can reserve before it inserts the generation.
    generation_id   UUID REFERENCES generations (id) DEFERRABLE INITIALLY DEFERRED,
    payment_id      BIGINT REFERENCES payments (id),
    refund_id       UUID REFERENCES refunds (id),
    idempotency_key TEXT,
    actor           TEXT,
    reason          TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT transactions_shape CHECK (CASE type
        WHEN 'topup' THEN payment_id IS NOT NULL
            AND delta_available = amount AND delta_reserved = 0
        WHEN 'reserve' THEN generation_id IS NOT NULL
            AND delta_available = -amount AND delta_reserved = amount
        WHEN 'commit' THEN generation_id IS NOT NULL
            AND delta_available = 0 AND delta_reserved = -amount
        WHEN 'release' THEN generation_id IS NOT NULL
            AND delta_available = amount AND delta_reserved = -amount
        WHEN 'grant' THEN idempotency_key IS NOT NULL AND actor IS NOT NULL AND reason IS NOT NULL
            AND delta_available = amount AND delta_reserved = 0
        WHEN 'bonus' THEN idempotency_key IS NOT NULL
            AND delta_available = amount AND delta_reserved = 0
        WHEN 'deduct' THEN idempotency_key IS NOT NULL AND actor IS NOT NULL AND reason IS NOT NULL
            AND delta_available = -amount AND delta_reserved = 0
        WHEN 'refund' THEN refund_id IS NOT NULL
            AND delta_available = -amount AND delta_reserved = 0
        WHEN 'refund_release' THEN refund_id IS NOT NULL
            AND delta_available = amount AND delta_reserved = 0
    END)
);
CREATE INDEX transactions_by_user ON transactions (user_id, id);
CREATE UNIQUE INDEX transactions_one_reserve ON transactions (generation_id) WHERE type = 'reserve';
CREATE UNIQUE INDEX transactions_one_settlement ON transactions (generation_id)
    WHERE type IN ('commit', 'release');
CREATE UNIQUE INDEX transactions_one_topup ON transactions (payment_id) WHERE type = 'topup';
CREATE UNIQUE INDEX transactions_one_refund ON transactions (refund_id) WHERE type = 'refund';
CREATE UNIQUE INDEX transactions_one_refund_release ON transactions (refund_id)
    WHERE type = 'refund_release';
CREATE UNIQUE INDEX transactions_one_adjustment ON transactions (idempotency_key)
    WHERE type IN ('grant', 'deduct', 'bonus');

CREATE FUNCTION transactions_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'transactions is append-only: % refused', TG_OP;
END $$;
CREATE TRIGGER transactions_append_only BEFORE UPDATE OR DELETE ON transactions
    FOR EACH ROW EXECUTE FUNCTION transactions_append_only();
