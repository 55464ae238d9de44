-- Progress the user sees (DESIGN §4 "Outbox sender", issue #5): each generation's status
-- message is one outbox row rendered from the generation's current state when it is sent, and
-- its edits are coalesced to at most one pending row per generation.

ALTER TABLE outbox
    -- A row that shows the status of this generation: its text is rendered when it is sent.
    ADD COLUMN status_of UUID REFERENCES generations (id);
-- At most one pending status row per generation: a later change folds into it.
CREATE UNIQUE INDEX outbox_one_pending_status ON outbox (status_of)
    WHERE state = 'pending' AND status_of IS NOT NULL;

ALTER TABLE generations
    -- The outbox row that sends the status message (its message_id is the one edits target).
    ADD COLUMN status_outbox_id BIGINT REFERENCES outbox (id),
    -- What the status message shows now, for which status, and since when (an edit to the same
    -- text is skipped, progress edits are spaced out).
    ADD COLUMN status_shown     TEXT,
    ADD COLUMN status_phase     TEXT,
    ADD COLUMN status_shown_at  TIMESTAMPTZ,
    -- Why a failed generation failed, as the user is told (a `Failure` text key).
    ADD COLUMN failure          TEXT;

-- The sender's progress sweep: generations being worked on whose status message is stale.
CREATE INDEX generations_progress ON generations (status_shown_at NULLS FIRST)
    WHERE status = 'processing' AND status_outbox_id IS NOT NULL;
