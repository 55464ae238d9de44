-- Issue 17 (DESIGN §10 "Growth money is bonus money", "Broadcasts"): starter credits, referrals,
-- promo codes and broadcasts. The credits they give are `bonus` journal rows (the ledger's own
-- migration); these tables say who may get them, once.

-- Starter credits, once per Telegram account ever: a hash of the id (not the id itself, so
-- nothing here says who it was), which `/deleteme` leaves in place. Owner: db::growth.
CREATE TABLE starter_claims (
    id_hash    TEXT PRIMARY KEY,
    claimed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Each user's referral code (made at their first /invite) and who brought whom: a friend is
-- bound once, to one referrer, never to themselves, under the terms of that day
-- (REFERRAL_BONUS, REFERRAL_PERCENT), which the rewards for the friend's charges follow.
-- Owner: db::growth.
CREATE TABLE referral_codes (
    user_id BIGINT PRIMARY KEY REFERENCES users (telegram_id),
    code    TEXT NOT NULL UNIQUE CHECK (code ~ '^[a-z0-9]{4,16}$')
);
CREATE TABLE referrals (
    friend_id   BIGINT PRIMARY KEY REFERENCES users (telegram_id),
    referrer_id BIGINT NOT NULL REFERENCES users (telegram_id),
    bonus       BIGINT NOT NULL CHECK (bonus >= 0),
    percent     BIGINT NOT NULL CHECK (percent BETWEEN 0 AND 100),
    bound_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT referrals_not_self CHECK (friend_id <> referrer_id)
);
CREATE INDEX referrals_by_referrer ON referrals (referrer_id);

-- Promo codes (stored lower-case: codes are case-insensitive) and who redeemed them. `used`
-- counts redemptions; it is raised under the code's row lock, so the limit is exact.
-- Owner: db::growth.
CREATE TABLE promo_codes (
    id         BIGSERIAL PRIMARY KEY,
    code       TEXT NOT NULL UNIQUE CHECK (code ~ '^[a-z0-9_-]{3,32}$'),
    credits    BIGINT NOT NULL CHECK (credits > 0),
    max_uses   BIGINT NOT NULL CHECK (max_uses > 0),
    used       BIGINT NOT NULL DEFAULT 0,
    expires_at TIMESTAMPTZ,
    disabled   BOOLEAN NOT NULL DEFAULT FALSE,
    created_by TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT promo_codes_within_limit CHECK (used >= 0 AND used <= max_uses)
);
CREATE TABLE promo_redemptions (
    code_id     BIGINT NOT NULL REFERENCES promo_codes (id),
    user_id     BIGINT NOT NULL REFERENCES users (telegram_id),
    redeemed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (code_id, user_id)
);
-- Wrong guesses per user in the current window (guessing is rate-limited).
CREATE TABLE promo_failures (
    user_id      BIGINT PRIMARY KEY,
    window_start TIMESTAMPTZ NOT NULL DEFAULT now(),
    failures     INTEGER NOT NULL DEFAULT 0
);

-- Broadcasts: what an admin composed, to whom, and where it stands. Recipients are chosen
-- when it is confirmed; each recipient row is moved into the outbox (lowest class) once, with
-- the outbox row it became, so a restart never queues anyone twice. Owner: broadcast.
CREATE TABLE broadcasts (
    id           BIGSERIAL PRIMARY KEY,
    admin_id     BIGINT NOT NULL,
    text         TEXT NOT NULL,
    photo        TEXT,
    button_text  TEXT,
    button_url   TEXT,
    segment      TEXT NOT NULL DEFAULT 'all',
    state        TEXT NOT NULL DEFAULT 'draft'
                   CHECK (state IN ('draft', 'running', 'paused', 'canceled', 'done')),
    recipients   BIGINT NOT NULL DEFAULT 0,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    confirmed_at TIMESTAMPTZ,
    finished_at  TIMESTAMPTZ
);
CREATE TABLE broadcast_recipients (
    broadcast_id BIGINT NOT NULL REFERENCES broadcasts (id),
    user_id      BIGINT NOT NULL,
    outbox_id    BIGINT,
    PRIMARY KEY (broadcast_id, user_id)
);
CREATE INDEX broadcast_recipients_waiting ON broadcast_recipients (broadcast_id, user_id)
    WHERE outbox_id IS NULL;
CREATE INDEX broadcast_recipients_outbox ON broadcast_recipients (outbox_id) WHERE outbox_id IS NOT NULL;

-- A broadcast row leaves 'pending' as 'sending' just before its send: a crash between the
-- send and its mark leaves it 'sending', never sent a second time.
ALTER TABLE outbox DROP CONSTRAINT outbox_state_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_state_check
    CHECK (state IN ('pending', 'sent', 'dropped', 'parked', 'sending'));
