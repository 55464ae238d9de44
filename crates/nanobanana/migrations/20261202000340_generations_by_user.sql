-- Issue 16: a request's caps counted the user's generations in flight and created today by
-- reading every generation the user ever made (`WHERE user_id = …` over the whole history, under
-- the balance lock): 18 ms for a user with 20,000 generations, growing with each one — the best
-- customers' prompts were the slowest. Each count now reads only what it counts: in flight
-- through `generations_active`, today through `generations_by_user` (user, created_at), which
-- also serves the history screen's and the panel's newest-first list of one user's generations.
-- `intake_prompt` (owner: bot::inbox, as in migration 221) is the same function with the two
-- counts split; `jobs::new::load_of` reads them the same way.
--
-- On a large existing table the index is built under a write lock (sqlx runs a migration in
-- a transaction, where CONCURRENTLY is not allowed): about a second per million generations.
CREATE INDEX generations_by_user ON generations (user_id, created_at, id);

CREATE OR REPLACE FUNCTION intake_prompt(
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
    SELECT (SELECT COUNT(*) FROM generations
            WHERE user_id = p_user AND status IN ('queued', 'processing')),
           (SELECT COUNT(*) FROM generations
            WHERE user_id = p_user AND created_at >= date_trunc('day', now()))
    INTO v_in_flight, v_today;
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
