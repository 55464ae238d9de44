-- The bot service: every Telegram update recorded once (idempotent, resumable handling), the
-- outbox of Telegram requests, and what a user's conversation needs.

ALTER TABLE users
    ADD COLUMN language       TEXT NOT NULL DEFAULT 'ru' CHECK (language IN ('ru', 'en')),
    ADD COLUMN settings       JSONB NOT NULL DEFAULT '{}',
    -- What the next message is expected to be (none, a receipt contact, an edit's prompt…).
    ADD COLUMN awaiting       TEXT,
    ADD COLUMN awaiting_data  JSONB,
    ADD COLUMN awaiting_until TIMESTAMPTZ,
    -- The /start deep-link parameter of the first contact.
    ADD COLUMN deep_link      TEXT,
    ADD COLUMN last_seen_at   TIMESTAMPTZ;

-- One row per update_id: a redelivered update that was fully handled is answered at once.
CREATE TABLE telegram_updates (
    update_id   BIGINT PRIMARY KEY,
    raw         JSONB NOT NULL,
    kind        TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'received' CHECK (state IN ('received', 'handled')),
    -- Progress of an update whose handling calls the outside world between steps.
    step        TEXT,
    error       TEXT,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    handled_at  TIMESTAMPTZ
);

-- Telegram requests to make, written in the transaction of the change that causes them.
-- Sent per chat in id order by the one active sender; `message_id` is what Telegram returned,
-- so a retry after a crash never sends twice nor edits the wrong message.
CREATE TABLE outbox (
    id              BIGSERIAL PRIMARY KEY,
    chat_id         BIGINT NOT NULL,
    method          TEXT NOT NULL,
    params          JSONB NOT NULL,
    -- For an edit: the outbox row whose message it edits (its message_id is filled in at send).
    edits           BIGINT REFERENCES outbox (id),
    state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'dropped')),
    message_id      BIGINT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at         TIMESTAMPTZ
);
CREATE INDEX outbox_pending ON outbox (chat_id, id) WHERE state = 'pending';
