-- Owned by the ledger (crates/nanobanana/src/ledger/movement.rs): every credit movement is one
-- call of `ledger_move`, the only code that writes `transactions` and moves `balances`. The Rust
-- ledger calls it, and so do the server-side paths of the update intake (DESIGN §4, issue #16),
-- so there is one implementation of a movement, tested as one.
--
-- `ledger_move` locks the user's balance row (READ COMMITTED re-reads a row it had to wait
-- for), writes one journal row with the balance after it — nothing if a unique journal index
-- already holds this movement or the available balance would go negative — and applies it to
-- the balance. `sign_a`/`sign_r` are the kind's signs of (Δ available, Δ reserved); `back` is
-- added to the available side on top of them (a commit that charged less than it reserved).
-- It answers one row: the user and amount asked, the available balance found (NULL: no balance
-- row), and the journal row's id with the balance after it (NULL: nothing written).
CREATE FUNCTION ledger_move(
    p_kind TEXT, p_sign_a BIGINT, p_sign_r BIGINT, p_generation UUID, p_payment BIGINT,
    p_refund UUID, p_key TEXT, p_actor TEXT, p_reason TEXT, p_user BIGINT, p_amount BIGINT,
    p_back BIGINT DEFAULT 0)
RETURNS TABLE (m_user BIGINT, m_amount BIGINT, m_available BIGINT, m_id BIGINT, m_after BIGINT,
               m_reserved_after BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    v_a BIGINT;
    v_r BIGINT;
    v_id BIGINT;
BEGIN
    SELECT b.credits_available, b.credits_reserved INTO v_a, v_r
    FROM balances b WHERE b.user_id = p_user FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT p_user, p_amount, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT;
        RETURN;
    END IF;
    IF v_a + p_sign_a * p_amount + p_back < 0 THEN
        RETURN QUERY SELECT p_user, p_amount, v_a, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT;
        RETURN;
    END IF;
    INSERT INTO transactions (user_id, type, amount, delta_available, delta_reserved,
        balance_after, reserved_after, generation_id, payment_id, refund_id,
        idempotency_key, actor, reason)
    VALUES (p_user, p_kind, p_amount, p_sign_a * p_amount + p_back, p_sign_r * p_amount,
            v_a + p_sign_a * p_amount + p_back, v_r + p_sign_r * p_amount, p_generation, p_payment,
            p_refund, p_key, p_actor, p_reason)
    ON CONFLICT DO NOTHING
    RETURNING id INTO v_id;
    IF v_id IS NULL THEN
        RETURN QUERY SELECT p_user, p_amount, v_a, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT;
        RETURN;
    END IF;
    UPDATE balances SET credits_available = v_a + p_sign_a * p_amount + p_back,
                        credits_reserved = v_r + p_sign_r * p_amount, updated_at = now()
    WHERE user_id = p_user;
    RETURN QUERY SELECT p_user, p_amount, v_a, v_id, v_a + p_sign_a * p_amount + p_back,
                        v_r + p_sign_r * p_amount;
END
$$;

-- The settlement of a generation: the fenced transition out of `processing` (a stale lease
-- matches no row: no row answered, nothing moved), then its movement. The whole reserved `cost`
-- leaves reserved; a commit charging less (`p_charged`, a picture smaller than bought) records
-- `charged` and the size delivered on the row and gives `cost - charged` back to available in
-- the same journal row. `LEAST` keeps the charge at or below the cost whatever the caller passes.
CREATE FUNCTION ledger_settle(
    p_kind TEXT, p_sign_a BIGINT, p_sign_r BIGINT, p_generation UUID, p_status TEXT,
    p_error TEXT, p_epoch BIGINT, p_charged BIGINT, p_delivered TEXT)
RETURNS TABLE (m_user BIGINT, m_amount BIGINT, m_available BIGINT, m_id BIGINT, m_after BIGINT,
               m_reserved_after BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    v_user BIGINT;
    v_cost BIGINT;
    v_back BIGINT;
BEGIN
    UPDATE generations SET status = p_status, error = p_error, completed_at = now(),
           charged = CASE WHEN p_charged IS NULL THEN NULL ELSE LEAST(cost, p_charged) END,
           delivered_size = p_delivered
    WHERE id = p_generation AND lease_epoch = p_epoch AND status = 'processing'
    RETURNING user_id, cost, COALESCE(cost - charged, 0) INTO v_user, v_cost, v_back;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT * FROM ledger_move(p_kind, p_sign_a, p_sign_r, p_generation, NULL, NULL,
                                           NULL, NULL, NULL, v_user, v_cost, v_back);
END
$$;
