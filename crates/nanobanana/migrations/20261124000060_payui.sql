-- Payments in the bot (issue #6): the terms a user accepted before paying, the receipt
-- contact they gave once, dashboard refunds settled once each, and the debt such a refund
-- leaves when the credits it takes back were already spent.

ALTER TABLE users
    ADD COLUMN terms_version     TEXT,
    ADD COLUMN terms_accepted_at TIMESTAMPTZ,
    -- A 54-FZ receipt contact: 'email:…' or 'phone:…'.
    ADD COLUMN receipt_contact   TEXT;

-- A refund made outside the bot (YooKassa's dashboard), settled once per provider refund id:
-- `deducted` credits left the balance (through a `refunds` row), `debt` more were owed.
CREATE TABLE external_refunds (
    provider_refund_id TEXT PRIMARY KEY,
    payment_id         BIGINT NOT NULL REFERENCES payments (id),
    user_id            BIGINT NOT NULL REFERENCES users (telegram_id),
    amount_minor       BIGINT NOT NULL CHECK (amount_minor > 0),
    credits            BIGINT NOT NULL CHECK (credits >= 0),
    deducted           BIGINT NOT NULL CHECK (deducted >= 0),
    debt               BIGINT NOT NULL CHECK (debt >= 0),
    refund_id          UUID REFERENCES refunds (id),
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT external_refunds_adds_up CHECK (deducted + debt = credits)
);

-- What a user still owes after dashboard refunds; while `owed > 0` no generation starts.
-- `repayments` numbers the repayments, each a `deduct` keyed 'debt:<user>:<n>'.
CREATE TABLE credit_debts (
    user_id    BIGINT PRIMARY KEY REFERENCES users (telegram_id),
    owed       BIGINT NOT NULL DEFAULT 0 CHECK (owed >= 0),
    repayments BIGINT NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Refunds still held (the provider's answer pending), found by the provider's id.
CREATE INDEX refunds_by_provider_id ON refunds (provider_refund_id) WHERE provider_refund_id IS NOT NULL;
