-- Issue 16: every update rewrote its sender's row (`users_touch`: username, first name,
-- last_seen_at = now()) — a new row version and its WAL on every message, though nothing but
-- the timestamp had changed. A sender already seen this minute, active, not erased, under the
-- same username and first name, is now locked as the update did (FOR NO KEY UPDATE: the
-- full path's lock order and the serialization of one user's concurrent updates stay as they
-- were) and read, not written; `last_seen_at` is kept to the minute (a new minute — so a new
-- day in any time zone — always writes). Same signature, answers and owner (db::users).
CREATE OR REPLACE FUNCTION users_touch(p_user BIGINT, p_username TEXT, p_first_name TEXT, p_language TEXT)
RETURNS TABLE (language TEXT, is_banned BOOLEAN, created BOOLEAN, settings JSONB, awaiting TEXT,
               awaiting_data JSONB)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT u.language, u.is_banned, FALSE, u.settings,
           CASE WHEN u.awaiting_until > now() THEN u.awaiting END,
           CASE WHEN u.awaiting_until > now() THEN u.awaiting_data END
    FROM users u
    WHERE u.telegram_id = p_user AND u.last_seen_at >= date_trunc('minute', now())
      AND u.is_active AND u.deleted_at IS NULL
      AND u.username IS NOT DISTINCT FROM p_username
      AND u.first_name IS NOT DISTINCT FROM p_first_name
    FOR NO KEY UPDATE;
    IF FOUND THEN
        RETURN;
    END IF;
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
