-- Issue 17 (DESIGN §10 "Growth money is bonus money"): the balance keeps the bonus part of its
-- available and reserved credits apart, and every journal row says how much of its movement was
-- bonus. Bonus credits are spent first (a reserve takes bonus before paid; a deduct too); a
-- settlement gives back exactly the mix its reserve took (a commit that charged less spends the
-- bonus part first); a refund takes only paid credits; a `bonus` row adds bonus credits.
-- `nanobanana audit` checks the split against the journal (bonus_vs_journal, bonus_shape,
-- bonus_reserved_vs_generations).
ALTER TABLE balances
    ADD COLUMN bonus_available BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN bonus_reserved  BIGINT NOT NULL DEFAULT 0,
    ADD CONSTRAINT balances_bonus_within CHECK (bonus_available BETWEEN 0 AND credits_available
                                                AND bonus_reserved BETWEEN 0 AND credits_reserved);

-- The bonus part of delta_available and delta_reserved (0 for a movement of paid credits).
ALTER TABLE transactions
    ADD COLUMN bonus_delta_available BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN bonus_delta_reserved  BIGINT NOT NULL DEFAULT 0;

-- `ledger_move` as migration 096 made it, plus the bonus split (same signature, same answer):
-- the split of each kind is decided here, so every caller — the Rust ledger and the intake's
-- server-side paths — moves bonus by the same rules. For a `refund` the answer's available
-- balance is the paid part (what a refund may take), so a short one reads as insufficient.
CREATE OR REPLACE FUNCTION ledger_move(
    p_kind TEXT, p_sign_a BIGINT, p_sign_r BIGINT, p_generation UUID, p_payment BIGINT,
    p_refund UUID, p_key TEXT, p_actor TEXT, p_reason TEXT, p_user BIGINT, p_amount BIGINT,
    p_back BIGINT DEFAULT 0)
RETURNS TABLE (m_user BIGINT, m_amount BIGINT, m_available BIGINT, m_id BIGINT, m_after BIGINT,
               m_reserved_after BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    v_a BIGINT;
    v_r BIGINT;
    v_ba BIGINT;
    v_br BIGINT;
    v_bonus_a BIGINT := 0;
    v_bonus_r BIGINT := 0;
    v_reserved_bonus BIGINT := 0;
    v_id BIGINT;
BEGIN
    SELECT b.credits_available, b.credits_reserved, b.bonus_available, b.bonus_reserved
    INTO v_a, v_r, v_ba, v_br
    FROM balances b WHERE b.user_id = p_user FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT p_user, p_amount, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT;
        RETURN;
    END IF;
    IF p_kind = 'refund' AND v_a - v_ba - p_amount < 0 THEN
        RETURN QUERY SELECT p_user, p_amount, v_a - v_ba, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT;
        RETURN;
    END IF;
    IF v_a + p_sign_a * p_amount + p_back < 0 THEN
        RETURN QUERY SELECT p_user, p_amount, v_a, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT;
        RETURN;
    END IF;
    IF p_kind = 'bonus' THEN
        v_bonus_a := p_amount;
    ELSIF p_kind = 'reserve' THEN
        v_bonus_a := -LEAST(v_ba, p_amount);
        v_bonus_r := LEAST(v_ba, p_amount);
    ELSIF p_kind = 'deduct' THEN
        v_bonus_a := -LEAST(v_ba, p_amount);
    ELSIF p_kind IN ('commit', 'release') THEN
        -- What the generation's reserve took as bonus (none to look up if nothing is reserved
        -- as bonus). A commit spends it first; the rest goes back to available as bonus.
        IF v_br > 0 THEN
            SELECT t.bonus_delta_reserved INTO v_reserved_bonus FROM transactions t
            WHERE t.generation_id = p_generation AND t.type = 'reserve';
            v_reserved_bonus := LEAST(COALESCE(v_reserved_bonus, 0), v_br);
        END IF;
        v_bonus_r := -v_reserved_bonus;
        IF p_kind = 'release' THEN
            v_bonus_a := v_reserved_bonus;
        ELSE
            v_bonus_a := v_reserved_bonus - LEAST(v_reserved_bonus, p_amount - p_back);
        END IF;
    END IF;
    INSERT INTO transactions (user_id, type, amount, delta_available, delta_reserved,
        balance_after, reserved_after, generation_id, payment_id, refund_id,
        idempotency_key, actor, reason, bonus_delta_available, bonus_delta_reserved)
    VALUES (p_user, p_kind, p_amount, p_sign_a * p_amount + p_back, p_sign_r * p_amount,
            v_a + p_sign_a * p_amount + p_back, v_r + p_sign_r * p_amount, p_generation, p_payment,
            p_refund, p_key, p_actor, p_reason, v_bonus_a, v_bonus_r)
    ON CONFLICT DO NOTHING
    RETURNING id INTO v_id;
    IF v_id IS NULL THEN
        RETURN QUERY SELECT p_user, p_amount, v_a, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT;
        RETURN;
    END IF;
    UPDATE balances SET credits_available = v_a + p_sign_a * p_amount + p_back,
                        credits_reserved = v_r + p_sign_r * p_amount,
                        bonus_available = v_ba + v_bonus_a, bonus_reserved = v_br + v_bonus_r,
                        updated_at = now()
    WHERE user_id = p_user;
    RETURN QUERY SELECT p_user, p_amount, v_a, v_id, v_a + p_sign_a * p_amount + p_back,
                        v_r + p_sign_r * p_amount;
END
$$;
