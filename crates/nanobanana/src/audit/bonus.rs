//! The audit's checks of bonus money (DESIGN §10 "Growth money is bonus money"): the balance's
//! bonus part against the journal, each row's bonus split against its kind's rule, bonus spent
//! before paid, the reserved bonus against the unfinished generations, and no refund paid out
//! for bonus credits.

/// Each check is a query returning (user_id, subject, detail) per violation.
pub(super) const CHECKS: &[(&str, &str)] = &[
    (
        "bonus_vs_journal",
        "SELECT b.user_id, 'user ' || b.user_id,
                format('bonus available %s reserved %s of %s and %s, journal bonus sums %s and %s',
                       b.bonus_available, b.bonus_reserved, b.credits_available, b.credits_reserved,
                       COALESCE(j.a, 0), COALESCE(j.r, 0))
         FROM balances b
         LEFT JOIN (SELECT user_id, SUM(bonus_delta_available) AS a, SUM(bonus_delta_reserved) AS r
                    FROM transactions GROUP BY user_id) j ON j.user_id = b.user_id
         WHERE COALESCE(j.a, 0) <> b.bonus_available OR COALESCE(j.r, 0) <> b.bonus_reserved
            OR b.bonus_available < 0 OR b.bonus_reserved < 0
            OR b.bonus_available > b.credits_available OR b.bonus_reserved > b.credits_reserved",
    ),
    (
        // Paid movements carry no bonus; a bonus row is all bonus; a reserve moves bonus from
        // available to reserved, at most its amount; a deduct takes at most its amount of bonus;
        // a settlement gives the reserve's bonus back out of reserved — all of it to available
        // on release, what a commit did not charge (bonus spent first) on commit.
        "bonus_shape",
        "SELECT t.user_id, format('transaction %s (%s)', t.id, t.type),
                format('%s of %s moves bonus available by %s and bonus reserved by %s (its reserve: %s)',
                       t.type, t.amount, t.bonus_delta_available, t.bonus_delta_reserved,
                       COALESCE(res.bonus_delta_reserved::TEXT, '-'))
         FROM transactions t
         LEFT JOIN transactions res ON t.type IN ('commit', 'release')
              AND res.generation_id = t.generation_id AND res.type = 'reserve'
         WHERE CASE t.type
             WHEN 'bonus' THEN t.bonus_delta_available <> t.amount OR t.bonus_delta_reserved <> 0
             WHEN 'reserve' THEN t.bonus_delta_reserved <> -t.bonus_delta_available
                                 OR t.bonus_delta_reserved NOT BETWEEN 0 AND t.amount
             WHEN 'deduct' THEN t.bonus_delta_reserved <> 0 OR t.bonus_delta_available NOT BETWEEN -t.amount AND 0
             WHEN 'release' THEN t.bonus_delta_reserved <> -COALESCE(res.bonus_delta_reserved, 0)
                                 OR t.bonus_delta_available <> COALESCE(res.bonus_delta_reserved, 0)
             WHEN 'commit' THEN t.bonus_delta_reserved <> -COALESCE(res.bonus_delta_reserved, 0)
                                OR t.bonus_delta_available <> COALESCE(res.bonus_delta_reserved, 0)
                                   - LEAST(COALESCE(res.bonus_delta_reserved, 0), t.amount - t.delta_available)
             ELSE t.bonus_delta_available <> 0 OR t.bonus_delta_reserved <> 0 END",
    ),
    (
        // A reserve or deduct takes bonus before paid: as much bonus as was available before it.
        "bonus_spent_first",
        "SELECT user_id, format('transaction %s (%s)', id, type),
                format('%s of %s took %s bonus while %s bonus was available', type, amount,
                       -bonus_delta_available, before)
         FROM (SELECT id, user_id, type, amount, bonus_delta_available,
                      SUM(bonus_delta_available) OVER w - bonus_delta_available AS before
               FROM transactions WINDOW w AS (PARTITION BY user_id ORDER BY id)) t
         WHERE type IN ('reserve', 'deduct') AND -bonus_delta_available <> LEAST(before, amount)",
    ),
    (
        "bonus_reserved_vs_generations",
        "SELECT b.user_id, 'user ' || b.user_id,
                format('bonus reserved %s, bonus reserved by unfinished generations %s',
                       b.bonus_reserved, COALESCE(g.r, 0))
         FROM balances b
         LEFT JOIN (SELECT g.user_id, SUM(t.bonus_delta_reserved) AS r FROM generations g
                    JOIN transactions t ON t.generation_id = g.id AND t.type = 'reserve'
                    WHERE g.status IN ('queued', 'processing') GROUP BY g.user_id) g ON g.user_id = b.user_id
         WHERE b.bonus_reserved <> COALESCE(g.r, 0)",
    ),
    (
        // A bonus row says where it came from and is keyed, so a repeat gives nothing.
        "bonus_source",
        "SELECT user_id, format('transaction %s (bonus)', id),
                format('source %s, key %s', COALESCE(actor, 'missing'), COALESCE(idempotency_key, 'missing'))
         FROM transactions
         WHERE type = 'bonus' AND (idempotency_key IS NULL
               OR actor IS NULL OR actor NOT IN ('starter', 'referral', 'promo', 'admin'))",
    ),
];
