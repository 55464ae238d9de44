-- The operator's panel (DESIGN §10), owned by `db::panel`: one-time login links, sessions, and
-- the admin's actions (each form's key: a double submit does the action once, and who did
-- what stays on record).

-- A link `/panel` in the bot sent to an admin: signed, valid 5 minutes, used once.
CREATE TABLE panel_links (
    id         UUID PRIMARY KEY,
    admin_id   BIGINT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- A browser's login. The cookie carries a random token; only its SHA-256 is kept here.
CREATE TABLE panel_sessions (
    token_sha256 BYTEA PRIMARY KEY,
    admin_id     BIGINT NOT NULL,
    -- Every state-changing form of this session carries it.
    csrf         TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at   TIMESTAMPTZ NOT NULL,
    ended_at     TIMESTAMPTZ
);
CREATE INDEX panel_sessions_by_admin ON panel_sessions (admin_id) WHERE ended_at IS NULL;

-- What an admin did from the panel, keyed by the form it came from.
CREATE TABLE panel_actions (
    key        UUID PRIMARY KEY,
    admin_id   BIGINT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    detail     TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX panel_actions_by_target ON panel_actions (target, created_at);
