-- Issue 16: the owners' small functions (migrations 220–224) were LANGUAGE sql. PostgreSQL
-- (before 18) parses and plans a non-inlined SQL function's body on every call — and the
-- intake's server-side paths call them once or more per update: `perf` on `loadgen intake`
-- showed raw_parser/base_yyparse under fmgr_sql and the planner's default expansion
-- (pg_strtok) among the database's top costs. As PL/pgSQL their plans are prepared once per
-- connection and reused. Same names, arguments, results and effects; each stays owned by the
-- module named beside it in migration 220.

CREATE OR REPLACE FUNCTION generation_insert(
    p_id UUID, p_user BIGINT, p_prompt TEXT, p_model TEXT, p_size TEXT, p_ratio TEXT, p_cost BIGINT,
    p_source TEXT, p_deadline INTERVAL, p_references TEXT[], p_status_outbox BIGINT, p_model_id TEXT,
    p_parent UUID DEFAULT NULL, p_request UUID DEFAULT NULL, p_variants SMALLINT DEFAULT 1,
    p_style TEXT DEFAULT NULL)
RETURNS BOOLEAN
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO generations (id, user_id, prompt, model, image_size, aspect_ratio, cost,
                             source_key, deadline, reference_file_ids, status_outbox_id, model_id,
                             parent_id, request_id, variants, style)
    VALUES (p_id, p_user, p_prompt, p_model, p_size, p_ratio, p_cost, p_source,
            COALESCE(now() + p_deadline, now() + interval '15 minutes'), p_references,
            p_status_outbox, p_model_id, p_parent, p_request, p_variants, p_style)
    ON CONFLICT (user_id, source_key) DO NOTHING;
    RETURN FOUND;
END
$$;

CREATE OR REPLACE FUNCTION intake_claim(p_update BIGINT, p_kind TEXT, p_raw JSONB)
RETURNS BOOLEAN
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO telegram_updates (update_id, kind, state, handled_at, body_md5)
    VALUES (p_update, p_kind, 'handled', now(), md5(p_raw::TEXT))
    ON CONFLICT (update_id) DO NOTHING;
    RETURN FOUND;
END
$$;

CREATE OR REPLACE FUNCTION outbox_enqueue(p_chat BIGINT, p_method TEXT, p_params JSONB, p_class SMALLINT)
RETURNS BIGINT
LANGUAGE plpgsql AS $$
DECLARE
    v_id BIGINT;
BEGIN
    INSERT INTO outbox (chat_id, method, params, class) VALUES (p_chat, p_method, p_params, p_class)
    RETURNING id INTO v_id;
    RETURN v_id;
END
$$;

CREATE OR REPLACE FUNCTION outbox_status_open(p_chat BIGINT, p_generation UUID)
RETURNS BIGINT
LANGUAGE plpgsql AS $$
DECLARE
    v_id BIGINT;
BEGIN
    INSERT INTO outbox (chat_id, method, params, status_of)
    VALUES (p_chat, 'sendMessage', jsonb_build_object('chat_id', p_chat, 'parse_mode', 'HTML'),
            p_generation)
    RETURNING id INTO v_id;
    RETURN v_id;
END
$$;

CREATE OR REPLACE FUNCTION outbox_unpark(p_chat BIGINT)
RETURNS BOOLEAN
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE outbox SET state = 'pending', next_attempt_at = now(), attempts = 0
    WHERE chat_id = p_chat AND state = 'parked';
    RETURN FOUND;
END
$$;

CREATE OR REPLACE FUNCTION users_save_settings(p_user BIGINT, p_settings JSONB)
RETURNS VOID
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE users SET settings = p_settings WHERE telegram_id = p_user;
END
$$;

CREATE OR REPLACE FUNCTION users_touch(p_user BIGINT, p_username TEXT, p_first_name TEXT, p_language TEXT)
RETURNS TABLE (language TEXT, is_banned BOOLEAN, created BOOLEAN, settings JSONB, awaiting TEXT,
               awaiting_data JSONB)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH touched AS (
        INSERT INTO users AS u (telegram_id, username, first_name, language, last_seen_at)
        VALUES (p_user, p_username, p_first_name, p_language, now())
        ON CONFLICT (telegram_id) DO UPDATE
            SET username = EXCLUDED.username, first_name = EXCLUDED.first_name,
                last_seen_at = now(), is_active = TRUE, deleted_at = NULL,
                language = CASE WHEN u.deleted_at IS NULL THEN u.language ELSE EXCLUDED.language END
        RETURNING u.language, u.is_banned, (u.xmax = 0) AS created, u.settings,
                  CASE WHEN u.awaiting_until > now() THEN u.awaiting END AS awaiting,
                  CASE WHEN u.awaiting_until > now() THEN u.awaiting_data END AS awaiting_data)
    SELECT t.language, t.is_banned, t.created, t.settings, t.awaiting, t.awaiting_data FROM touched t;
END
$$;
