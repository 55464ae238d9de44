-- A settings button in one round trip (issue #16), as `…221_intake`'s paths.

-- Owner: db::users. The user's settings, as the settings screen changed them.
CREATE FUNCTION users_save_settings(p_user BIGINT, p_settings JSONB)
RETURNS VOID
LANGUAGE sql AS $$
    UPDATE users SET settings = p_settings WHERE telegram_id = p_user
$$;

-- Owner: bot::inbox. A settings button: the update recorded, the sender touched (their settings
-- still `p_settings`, as the caller read them), `p_new` saved, the settings message edited
-- (`p_params`). 'known' (nothing written) when the update id is known.
CREATE FUNCTION intake_setting(
    p_update BIGINT, p_kind TEXT, p_raw JSONB, p_user BIGINT, p_username TEXT, p_first_name TEXT,
    p_language TEXT, p_settings JSONB, p_chat BIGINT, p_new JSONB, p_params JSONB)
RETURNS TEXT
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT intake_claim(p_update, p_kind, p_raw) THEN
        RETURN 'known';
    END IF;
    PERFORM intake_sender(p_user, p_username, p_first_name, p_language, p_settings);
    PERFORM users_save_settings(p_user, p_new);
    PERFORM outbox_enqueue(p_chat, 'editMessageText', p_params, 1::SMALLINT);
    RETURN 'handled';
END
$$;
