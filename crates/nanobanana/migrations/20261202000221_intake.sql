-- The update intake's common paths in one round trip each (issue #16). Owner: bot::inbox
-- (crates/nanobanana/src/bot/fast.rs calls them). Each is the whole transaction of an update
-- the full path (bot::inbox::Bot::handle) would handle the same way, composed of the owners'
-- own functions (`…096_ledger_move`, `…220_owner_functions`) in the full path's lock order:
-- the update's row, the user's row, their balance. Whatever the full path would refuse or treat
-- specially is not decided here: the function raises `NB001` (its writes roll back) or answers
-- before writing, and the caller runs the full path, which decides as it always did.

-- Nothing is stored twice: the raw update is not kept (its effects are; the hash of its body
-- tells a redelivery from a new update that reuses its id).
ALTER TABLE telegram_updates DROP COLUMN raw;

-- Records update `p_update` (`p_raw` only hashed, as the full path's claim does) as handled by
-- this transaction; false when its id is known.
CREATE FUNCTION intake_claim(p_update BIGINT, p_kind TEXT, p_raw JSONB)
RETURNS BOOLEAN
LANGUAGE sql AS $$
    WITH i AS (
        INSERT INTO telegram_updates (update_id, kind, state, handled_at, body_md5)
        VALUES (p_update, p_kind, 'handled', now(), md5(p_raw::TEXT))
        ON CONFLICT (update_id) DO NOTHING
        RETURNING 1)
    SELECT EXISTS (SELECT 1 FROM i)
$$;

-- A known, unbanned user with no conversation state, who wrote `p_language` and `p_settings` as
-- the caller read them: touched, their parked deliveries due. Raises NB001 otherwise.
CREATE FUNCTION intake_sender(
    p_user BIGINT, p_username TEXT, p_first_name TEXT, p_language TEXT, p_settings JSONB)
RETURNS VOID
LANGUAGE plpgsql AS $$
DECLARE
    t RECORD;
BEGIN
    SELECT * INTO t FROM users_touch(p_user, p_username, p_first_name, p_language);
    IF t.created OR t.is_banned OR t.awaiting IS NOT NULL OR t.language IS DISTINCT FROM p_language
       OR t.settings IS DISTINCT FROM p_settings THEN
        RAISE EXCEPTION 'intake: the full path handles this sender' USING ERRCODE = 'NB001';
    END IF;
    PERFORM outbox_unpark(p_user);
END
$$;

-- A text reply (`/start`, `/help`…): the update recorded, the sender touched, the message
-- queued. 'known' (nothing written) when the update id is known.
CREATE FUNCTION intake_reply(
    p_update BIGINT, p_kind TEXT, p_raw JSONB, p_user BIGINT, p_username TEXT, p_first_name TEXT,
    p_language TEXT, p_settings JSONB, p_chat BIGINT, p_method TEXT, p_params JSONB)
RETURNS TEXT
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT intake_claim(p_update, p_kind, p_raw) THEN
        RETURN 'known';
    END IF;
    PERFORM intake_sender(p_user, p_username, p_first_name, p_language, p_settings);
    PERFORM outbox_enqueue(p_chat, p_method, p_params, 1::SMALLINT);
    RETURN 'handled';
END
$$;

-- A prompt: the update recorded, the sender touched; under the balance row lock the caps
-- (domain::request::check_pause and check_caps: generation paused, the model missing, a debt,
-- in flight ≥ p_max_in_flight, created today ≥ p_daily, available < p_cost each raise NB001 for
-- the full path to refuse with its reasons), then the cost reserved by the ledger, the status
-- message queued and the generation inserted. 'known' (nothing written) when the update id is
-- known.
CREATE FUNCTION intake_prompt(
    p_update BIGINT, p_kind TEXT, p_raw JSONB, p_user BIGINT, p_username TEXT, p_first_name TEXT,
    p_language TEXT, p_settings JSONB, p_chat BIGINT,
    p_generation UUID, p_prompt TEXT, p_model TEXT, p_model_id TEXT, p_size TEXT, p_ratio TEXT,
    p_cost BIGINT, p_deadline INTERVAL, p_source TEXT,
    p_max_in_flight BIGINT, p_daily BIGINT, p_pause TEXT)
RETURNS TEXT
LANGUAGE plpgsql AS $$
DECLARE
    v_available BIGINT;
    v_in_flight BIGINT;
    v_today BIGINT;
    v_moved RECORD;
    v_status BIGINT;
BEGIN
    IF NOT intake_claim(p_update, p_kind, p_raw) THEN
        RETURN 'known';
    END IF;
    PERFORM intake_sender(p_user, p_username, p_first_name, p_language, p_settings);
    -- The lock comes first, so the counts see every request of this user committed before it.
    SELECT credits_available INTO v_available FROM balances WHERE user_id = p_user FOR UPDATE;
    SELECT COUNT(*) FILTER (WHERE status IN ('queued', 'processing')),
           COUNT(*) FILTER (WHERE created_at >= date_trunc('day', now()))
    INTO v_in_flight, v_today
    FROM generations WHERE user_id = p_user;
    IF v_available IS NULL OR v_available < p_cost
       OR v_in_flight >= p_max_in_flight OR v_today >= p_daily
       OR EXISTS (SELECT 1 FROM service_state WHERE name = p_pause)
       OR EXISTS (SELECT 1 FROM unavailable_models WHERE model_id = p_model_id)
       OR EXISTS (SELECT 1 FROM credit_debts WHERE user_id = p_user AND owed > 0) THEN
        RAISE EXCEPTION 'intake: the full path refuses this request' USING ERRCODE = 'NB001';
    END IF;
    SELECT * INTO v_moved FROM ledger_move('reserve', -1, 1, p_generation, NULL, NULL, NULL, NULL,
                                           NULL, p_user, p_cost);
    IF v_moved.m_id IS NULL THEN
        RAISE EXCEPTION 'intake: the ledger did not reserve' USING ERRCODE = 'NB001';
    END IF;
    v_status := outbox_status_open(p_chat, p_generation);
    IF NOT generation_insert(p_generation, p_user, p_prompt, p_model, p_size, p_ratio, p_cost,
                             p_source, p_deadline, '{}', v_status, p_model_id) THEN
        RAISE EXCEPTION 'intake: the source already has a generation' USING ERRCODE = 'NB001';
    END IF;
    RETURN 'queued';
END
$$;
