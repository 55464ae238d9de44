-- Owned by the ledger (crates/nanobanana/src/ledger/movement.rs, `CANCEL`): the cancel of a
-- generation that has not started (DESIGN §10 "Variants and cancel", issue 18). The fenced
-- transition `queued` (never claimed: `started_at IS NULL`) → `failed` of the user's own
-- generation, then its release through `ledger_move`, in one call. A claim that took the row
-- first, an earlier cancel, or another user's id matches no row: nothing answered, nothing moved.
CREATE FUNCTION ledger_cancel(
    p_kind TEXT, p_sign_a BIGINT, p_sign_r BIGINT, p_generation UUID, p_error TEXT, p_user BIGINT)
RETURNS TABLE (m_user BIGINT, m_amount BIGINT, m_available BIGINT, m_id BIGINT, m_after BIGINT,
               m_reserved_after BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    v_user BIGINT;
    v_cost BIGINT;
BEGIN
    UPDATE generations SET status = 'failed', error = p_error, failure = 'failed_cancelled',
           completed_at = now()
    WHERE id = p_generation AND user_id = p_user AND status = 'queued' AND started_at IS NULL
    RETURNING user_id, cost INTO v_user, v_cost;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT * FROM ledger_move(p_kind, p_sign_a, p_sign_r, p_generation, NULL, NULL,
                                           NULL, NULL, NULL, v_user, v_cost, 0);
END
$$;
