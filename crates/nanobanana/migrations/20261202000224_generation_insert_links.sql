-- Owner: jobs (jobs::new). One insert for every generation: `generation_insert` gains the links of
-- an edit, a variant or a styled prompt (DESIGN §10), defaulting to none, so plain and linked
-- generations (and the intake's fast path, which calls it with the first twelve) share it.
DROP FUNCTION generation_insert(UUID, BIGINT, TEXT, TEXT, TEXT, TEXT, BIGINT, TEXT, INTERVAL, TEXT[], BIGINT, TEXT);

CREATE FUNCTION generation_insert(
    p_id UUID, p_user BIGINT, p_prompt TEXT, p_model TEXT, p_size TEXT, p_ratio TEXT, p_cost BIGINT,
    p_source TEXT, p_deadline INTERVAL, p_references TEXT[], p_status_outbox BIGINT, p_model_id TEXT,
    p_parent UUID DEFAULT NULL, p_request UUID DEFAULT NULL, p_variants SMALLINT DEFAULT 1,
    p_style TEXT DEFAULT NULL)
RETURNS BOOLEAN
LANGUAGE sql AS $$
    WITH i AS (
        INSERT INTO generations (id, user_id, prompt, model, image_size, aspect_ratio, cost,
                                 source_key, deadline, reference_file_ids, status_outbox_id, model_id,
                                 parent_id, request_id, variants, style)
        VALUES (p_id, p_user, p_prompt, p_model, p_size, p_ratio, p_cost, p_source,
                COALESCE(now() + p_deadline, now() + interval '15 minutes'), p_references,
                p_status_outbox, p_model_id, p_parent, p_request, p_variants, p_style)
        ON CONFLICT (user_id, source_key) DO NOTHING
        RETURNING 1)
    SELECT EXISTS (SELECT 1 FROM i)
$$;
