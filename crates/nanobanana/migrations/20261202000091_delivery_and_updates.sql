-- Issue 14 (DESIGN §10): paid deliveries are never dropped for a transient failure and wait
-- for a user who blocked the bot; the outbox serves priority classes; updates are deduplicated
-- by id *and* body, and old ones are pruned.

-- Priority class of an outbox row: 0 paid delivery, 1 reply, 2 progress edit, 3 broadcast.
ALTER TABLE outbox
    ADD COLUMN class    SMALLINT NOT NULL DEFAULT 1 CHECK (class BETWEEN 0 AND 3),
    -- The generation whose result this row delivers (class 0 rows).
    ADD COLUMN delivers UUID;
ALTER TABLE outbox DROP CONSTRAINT outbox_state_check;
-- 'parked': a paid delivery to a user who blocked the bot, sent again once they are back.
ALTER TABLE outbox ADD CONSTRAINT outbox_state_check
    CHECK (state IN ('pending', 'sent', 'dropped', 'parked'));

UPDATE outbox SET class = 0, delivers = (params->'photo'->>'generation_id')::UUID
 WHERE method = 'sendPhoto' AND jsonb_typeof(params->'photo') = 'object'
   AND params->'photo' ? 'generation_id';
UPDATE outbox SET class = 0, delivers = (params->'document'->>'generation_id')::UUID
 WHERE method = 'sendDocument' AND jsonb_typeof(params->'document') = 'object'
   AND params->'document' ? 'generation_id';
UPDATE outbox SET class = 2 WHERE status_of IS NOT NULL;

CREATE INDEX outbox_delivers ON outbox (delivers) WHERE delivers IS NOT NULL;
CREATE INDEX outbox_parked ON outbox (chat_id) WHERE state = 'parked';
-- The sender asks "did a paid delivery arrive since?" between sends of lower classes.
CREATE INDEX outbox_pending_paid ON outbox (id) WHERE state = 'pending' AND class = 0;

-- The body an update_id was first seen with: the same id with another body is a new update
-- (Telegram restarts ids at random after a quiet week; a second bot has ids of its own).
ALTER TABLE telegram_updates ADD COLUMN body_md5 TEXT;
UPDATE telegram_updates SET body_md5 = md5(raw::TEXT);
ALTER TABLE telegram_updates ALTER COLUMN body_md5 SET NOT NULL;
-- When a payment step was last tried (the resumer spaces its tries), and pruning by age.
ALTER TABLE telegram_updates ADD COLUMN step_tried_at TIMESTAMPTZ;
CREATE INDEX telegram_updates_open ON telegram_updates (update_id) WHERE state <> 'handled';
CREATE INDEX telegram_updates_received ON telegram_updates (received_at);
