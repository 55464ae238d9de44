-- The writes the update intake makes, each as a SQL function of the table's owner (DESIGN §2),
-- called by that owner's Rust code and by the intake's server-side paths (`…221_intake`), so
-- each write has one implementation whichever path runs it (issue #16).

-- Owner: db::users. Records that the user wrote: creates them (with `p_language`; a trigger
-- opens their zero balance) on first contact, or refreshes their names and marks them active;
-- answers what handling their update needs.
CREATE FUNCTION users_touch(p_user BIGINT, p_username TEXT, p_first_name TEXT, p_language TEXT)
RETURNS TABLE (language TEXT, is_banned BOOLEAN, created BOOLEAN, settings JSONB, awaiting TEXT,
               awaiting_data JSONB)
LANGUAGE sql AS $$
    INSERT INTO users AS u (telegram_id, username, first_name, language, last_seen_at)
    VALUES (p_user, p_username, p_first_name, p_language, now())
    ON CONFLICT (telegram_id) DO UPDATE
        SET username = EXCLUDED.username, first_name = EXCLUDED.first_name,
            last_seen_at = now(), is_active = TRUE, deleted_at = NULL,
            language = CASE WHEN u.deleted_at IS NULL THEN u.language ELSE EXCLUDED.language END
    RETURNING u.language, u.is_banned, (u.xmax = 0),  u.settings,
              CASE WHEN u.awaiting_until > now() THEN u.awaiting END,
              CASE WHEN u.awaiting_until > now() THEN u.awaiting_data END
$$;

-- Owner: outbox. A message to send, in priority `p_class`; its row id.
CREATE FUNCTION outbox_enqueue(p_chat BIGINT, p_method TEXT, p_params JSONB, p_class SMALLINT)
RETURNS BIGINT
LANGUAGE sql AS $$
    INSERT INTO outbox (chat_id, method, params, class) VALUES (p_chat, p_method, p_params, p_class)
    RETURNING id
$$;

-- Owner: outbox. The status message of generation `p_generation`, rendered when it is sent.
CREATE FUNCTION outbox_status_open(p_chat BIGINT, p_generation UUID)
RETURNS BIGINT
LANGUAGE sql AS $$
    INSERT INTO outbox (chat_id, method, params, status_of)
    VALUES (p_chat, 'sendMessage', jsonb_build_object('chat_id', p_chat, 'parse_mode', 'HTML'),
            p_generation)
    RETURNING id
$$;

-- Owner: outbox. The user wrote again: deliveries parked while they had blocked the bot are due.
-- Whether there were any.
CREATE FUNCTION outbox_unpark(p_chat BIGINT)
RETURNS BOOLEAN
LANGUAGE sql AS $$
    WITH moved AS (
        UPDATE outbox SET state = 'pending', next_attempt_at = now(), attempts = 0
        WHERE chat_id = p_chat AND state = 'parked'
        RETURNING 1)
    SELECT EXISTS (SELECT 1 FROM moved)
$$;

-- Owner: jobs (jobs::new). A queued generation keyed to its source; false when the source
-- already created one. `p_deadline` NULL: the default 15 minutes.
CREATE FUNCTION generation_insert(
    p_id UUID, p_user BIGINT, p_prompt TEXT, p_model TEXT, p_size TEXT, p_ratio TEXT, p_cost BIGINT,
    p_source TEXT, p_deadline INTERVAL, p_references TEXT[], p_status_outbox BIGINT, p_model_id TEXT)
RETURNS BOOLEAN
LANGUAGE sql AS $$
    WITH i AS (
        INSERT INTO generations (id, user_id, prompt, model, image_size, aspect_ratio, cost,
                                 source_key, deadline, reference_file_ids, status_outbox_id, model_id)
        VALUES (p_id, p_user, p_prompt, p_model, p_size, p_ratio, p_cost, p_source,
                COALESCE(now() + p_deadline, now() + interval '15 minutes'), p_references,
                p_status_outbox, p_model_id)
        ON CONFLICT (user_id, source_key) DO NOTHING
        RETURNING 1)
    SELECT EXISTS (SELECT 1 FROM i)
$$;
