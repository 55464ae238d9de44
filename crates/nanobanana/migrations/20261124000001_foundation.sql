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
-- in the same statement. amount > 0 is the size of the movement; the deltas say where it
-- went; balance_after / reserved_after are the user's balance right after it (never negative:
-- they are the values `balances` receives, and its CHECK holds).
-- The database enforces what the unique indexes need (each kind carries its reference). That
-- each kind's deltas have the right signs is checked by `nanobanana audit` (journal_shape),
-- not by a CHECK: a per-kind CHECK is re-prepared on every insert and cost the ledger ~15%
-- of its throughput (loadgen ledger), while one statement in `ledger` writes every row.
CREATE TABLE transactions (
    id              BIGSERIAL PRIMARY KEY,
    user_id         BIGINT NOT NULL REFERENCES users (telegram_id),
    type            TEXT NOT NULL,
    amount          BIGINT NOT NULL,
    delta_available BIGINT NOT NULL,
    delta_reserved  BIGINT NOT NULL,
    balance_after   BIGINT NOT NULL,
    reserved_after  BIGINT NOT NULL,
    -- Deferred so a generation request can reserve before it inserts the generation.
    generation_id   UUID REFERENCES generations (id) DEFERRABLE INITIALLY DEFERRED,
    payment_id      BIGINT REFERENCES payments (id),
    refund_id       UUID REFERENCES refunds (id),
    idempotency_key TEXT,
    actor           TEXT,
    reason          TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT transactions_valid CHECK (
        amount > 0
        AND type IN ('topup', 'reserve', 'commit', 'release', 'grant', 'deduct', 'refund',
                     'refund_release', 'bonus')
        AND (generation_id IS NOT NULL) = (type IN ('reserve', 'commit', 'release'))
        AND (payment_id IS NOT NULL) = (type = 'topup')
        AND (refund_id IS NOT NULL) = (type IN ('refund', 'refund_release')))
);
CREATE INDEX transactions_by_user ON transactions (user_id, id);
-- Uniqueness that makes repeats impossible, in two indexes (each partial index's predicate is
-- evaluated on every insert, so fewer and simpler predicates keep the ledger fast):
-- one reserve and one settlement — commit or release, never both — per generation ...
CREATE UNIQUE INDEX transactions_once_per_generation ON transactions (generation_id, (type = 'reserve'))
    WHERE generation_id IS NOT NULL;
-- ... and one topup per provider charge, one refund and at most one refund_release per refund,
-- one adjustment per idempotency key.
CREATE UNIQUE INDEX transactions_once_per_reference ON transactions ((
    CASE WHEN payment_id IS NOT NULL THEN 'payment:' || payment_id
         WHEN refund_id IS NOT NULL THEN type || ':' || refund_id
         ELSE 'key:' || idempotency_key END))
    WHERE generation_id IS NULL;

CREATE FUNCTION transactions_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'transactions is append-only: % refused', TG_OP;
END $$;
CREATE TRIGGER transactions_append_only BEFORE UPDATE OR DELETE ON transactions
    FOR EACH ROW EXECUTE FUNCTION transactions_append_only();
