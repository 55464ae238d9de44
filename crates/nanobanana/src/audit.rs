//! `nanobanana audit`: checks the ledger guarantees (DESIGN §1.2) over the whole database and
//! reports every violation with the ids needed to find it. Read-only; runs in one snapshot.

mod bonus;

use sqlx::{Connection, PgConnection};

/// One broken rule about one thing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    pub check: &'static str,
    pub user_id: Option<i64>,
    pub subject: String,
    pub detail: String,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Totals {
    pub users: i64,
    pub journal_rows: i64,
    pub generations: i64,
    pub charges: i64,
    pub refunds: i64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub clean: bool,
    pub checks: Vec<&'static str>,
    pub totals: Totals,
    pub violations: Vec<Violation>,
}

/// At most this many violations are listed per check.
const LIMIT_PER_CHECK: i64 = 1000;

/// Each check is a query returning (user_id, subject, detail) per violation.
const CHECKS: &[(&str, &str)] = &[
    (
        "negative_balance",
        "SELECT user_id, 'user ' || user_id,
                format('available %s, reserved %s', credits_available, credits_reserved)
         FROM balances WHERE credits_available < 0 OR credits_reserved < 0",
    ),
    (
        "balance_vs_journal",
        "SELECT COALESCE(b.user_id, j.user_id), 'user ' || COALESCE(b.user_id, j.user_id),
                format('balance available %s reserved %s, journal sums available %s reserved %s',
                       b.credits_available, b.credits_reserved, COALESCE(j.a, 0), COALESCE(j.r, 0))
         FROM balances b
         FULL JOIN (SELECT user_id, SUM(delta_available) AS a, SUM(delta_reserved) AS r
                    FROM transactions GROUP BY user_id) j ON j.user_id = b.user_id
         WHERE b.user_id IS NULL OR COALESCE(j.a, 0) <> b.credits_available
            OR COALESCE(j.r, 0) <> b.credits_reserved",
    ),
    (
        "reserved_vs_generations",
        "SELECT b.user_id, 'user ' || b.user_id,
                format('reserved %s, cost of unfinished generations %s', b.credits_reserved, COALESCE(g.c, 0))
         FROM balances b
         LEFT JOIN (SELECT user_id, SUM(cost) AS c FROM generations
                    WHERE status IN ('queued', 'processing') GROUP BY user_id) g ON g.user_id = b.user_id
         WHERE b.credits_reserved <> COALESCE(g.c, 0)",
    ),
    (
        "journal_running_balance",
        "SELECT DISTINCT ON (user_id) user_id, 'transaction ' || id,
                format('balance_after %s reserved_after %s, but the rows up to it sum to %s and %s',
                       balance_after, reserved_after, sa, sr)
         FROM (SELECT id, user_id, balance_after, reserved_after,
                      SUM(delta_available) OVER w AS sa, SUM(delta_reserved) OVER w AS sr
               FROM transactions WINDOW w AS (PARTITION BY user_id ORDER BY id)) t
         WHERE balance_after <> sa OR reserved_after <> sr
         ORDER BY user_id, id",
    ),
    (
        "journal_shape",
        "SELECT user_id, format('transaction %s (%s)', id, type),
                format('%s of %s moves available by %s and reserved by %s', type, amount,
                       delta_available, delta_reserved)
         FROM transactions
         WHERE amount <= 0
            OR delta_available IS DISTINCT FROM amount * CASE type
                   WHEN 'topup' THEN 1 WHEN 'grant' THEN 1 WHEN 'bonus' THEN 1
                   WHEN 'release' THEN 1 WHEN 'refund_release' THEN 1
                   WHEN 'reserve' THEN -1 WHEN 'deduct' THEN -1 WHEN 'refund' THEN -1
                   WHEN 'commit' THEN 0 END
               AND NOT (type = 'commit' AND delta_available >= 0 AND delta_available < amount)
            OR delta_reserved IS DISTINCT FROM amount * CASE type
                   WHEN 'reserve' THEN 1 WHEN 'commit' THEN -1 WHEN 'release' THEN -1 ELSE 0 END
            OR (type IN ('grant', 'deduct', 'bonus') AND idempotency_key IS NULL)
            OR (type IN ('grant', 'deduct') AND (actor IS NULL OR reason IS NULL))",
    ),
    (
        "charge_credited_once",
        "SELECT p.user_id, format('payment %s (%s %s)', p.id, p.provider, p.payment_id),
                format('succeeded, credited %s time(s) with %s credits, worth %s',
                       COUNT(t.id), COALESCE(SUM(t.amount), 0), p.credits)
         FROM payments p
         LEFT JOIN transactions t ON t.payment_id = p.id AND t.type = 'topup'
         WHERE p.status = 'succeeded'
         GROUP BY p.id
         HAVING COUNT(t.id) <> 1 OR COALESCE(SUM(t.amount), 0) <> p.credits",
    ),
    (
        "credit_without_success",
        "SELECT p.user_id, format('payment %s (%s %s)', p.id, p.provider, p.payment_id),
                format('status %s, yet credited %s time(s)', p.status, COUNT(t.id))
         FROM payments p JOIN transactions t ON t.payment_id = p.id AND t.type = 'topup'
         WHERE p.status <> 'succeeded'
         GROUP BY p.id",
    ),
    (
        "generation_reserved_once",
        "SELECT g.user_id, 'generation ' || g.id,
                format('cost %s, reserved %s time(s) for %s', g.cost, COUNT(t.id), COALESCE(SUM(t.amount), 0))
         FROM generations g
         LEFT JOIN transactions t ON t.generation_id = g.id AND t.type = 'reserve'
         GROUP BY g.id
         HAVING COUNT(t.id) <> 1 OR COALESCE(SUM(t.amount), 0) <> g.cost",
    ),
    (
        "generation_settled_once",
        "SELECT g.user_id, 'generation ' || g.id,
                format('status %s with %s settlement(s)', g.status, COUNT(t.id))
         FROM generations g
         LEFT JOIN transactions t ON t.generation_id = g.id AND t.type IN ('commit', 'release')
         GROUP BY g.id
         HAVING (g.status IN ('succeeded', 'failed') AND COUNT(t.id) <> 1)
             OR (g.status IN ('queued', 'processing') AND COUNT(t.id) > 0)",
    ),
    (
        "settlement_matches_status",
        "SELECT g.user_id, 'generation ' || g.id,
                format('status %s but settled by %s of %s (cost %s)', g.status, t.type, t.amount, g.cost)
         FROM generations g
         JOIN transactions t ON t.generation_id = g.id AND t.type IN ('commit', 'release')
         WHERE (g.status = 'succeeded' AND t.type <> 'commit')
            OR (g.status = 'failed' AND t.type <> 'release')
            OR t.amount <> g.cost",
    ),
    (
        "commit_matches_charge",
        "SELECT g.user_id, 'generation ' || g.id,
                format('cost %s, charged %s, but its commit gave back %s', g.cost, g.charged, t.delta_available)
         FROM generations g
         JOIN transactions t ON t.generation_id = g.id AND t.type = 'commit'
         WHERE t.delta_available <> g.cost - COALESCE(g.charged, g.cost)",
    ),
    (
        "refund_held_once",
        "SELECT r.user_id, 'refund ' || r.id,
                format('%s credits, journal holds %s time(s) for %s', r.credits, COUNT(t.id), COALESCE(SUM(t.amount), 0))
         FROM refunds r
         LEFT JOIN transactions t ON t.refund_id = r.id AND t.type = 'refund'
         GROUP BY r.id
         HAVING COUNT(t.id) <> 1 OR COALESCE(SUM(t.amount), 0) <> r.credits",
    ),
    (
        "refund_release_matches_status",
        "SELECT r.user_id, 'refund ' || r.id,
                format('status %s with %s release(s) of %s', r.status, COUNT(t.id), COALESCE(SUM(t.amount), 0))
         FROM refunds r
         LEFT JOIN transactions t ON t.refund_id = r.id AND t.type = 'refund_release'
         GROUP BY r.id
         HAVING (r.status = 'failed' AND (COUNT(t.id) <> 1 OR SUM(t.amount) <> r.credits))
             OR (r.status <> 'failed' AND COUNT(t.id) > 0)",
    ),
    (
        "dangling_reference",
        "SELECT t.user_id, format('transaction %s (%s)', t.id, t.type),
                format('refers to generation %s, which does not exist', t.generation_id)
         FROM transactions t
         WHERE t.generation_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM generations g WHERE g.id = t.generation_id)
         UNION ALL
         SELECT g.user_id, 'generation ' || g.id, format('belongs to user %s, who does not exist', g.user_id)
         FROM generations g
         WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.telegram_id = g.user_id)",
    ),
    (
        "debt_vs_refunds",
        "SELECT u.user_id, 'user ' || u.user_id,
                format('owes %s, but refunds made outside the bot left %s and repayments took %s',
                       COALESCE(d.owed, 0), COALESCE(e.debt, 0), COALESCE(r.paid, 0))
         FROM (SELECT user_id FROM credit_debts UNION SELECT user_id FROM external_refunds) u
         LEFT JOIN credit_debts d ON d.user_id = u.user_id
         LEFT JOIN (SELECT user_id, SUM(debt) AS debt FROM external_refunds GROUP BY user_id) e
                ON e.user_id = u.user_id
         LEFT JOIN (SELECT user_id, SUM(amount) AS paid FROM transactions
                    WHERE type = 'deduct' AND actor = 'payments:debt' GROUP BY user_id) r
                ON r.user_id = u.user_id
         WHERE COALESCE(d.owed, 0) <> COALESCE(e.debt, 0) - COALESCE(r.paid, 0)",
    ),
    (
        "refund_exceeds_charge",
        "SELECT p.user_id, format('payment %s (%s %s)', p.id, p.provider, p.payment_id),
                format('worth %s credits and %s minor units, but refunds not failed take %s and %s',
                       p.credits, p.amount_minor, SUM(r.credits), SUM(r.amount_minor))
         FROM payments p JOIN refunds r ON r.payment_id = p.id AND r.status <> 'failed'
         GROUP BY p.id
         HAVING SUM(r.credits) > p.credits OR SUM(r.amount_minor) > p.amount_minor",
    ),
    (
        "charge_matches_order",
        "SELECT p.user_id, format('payment %s (%s %s)', p.id, p.provider, p.payment_id),
                format('charge %s %s %s for %s credits of user %s, but its order %s is %s %s %s for %s credits of user %s',
                       p.provider, p.amount_minor, p.currency, p.credits, p.user_id,
                       t.id, t.provider, t.amount_minor, t.currency, t.credits, t.user_id)
         FROM payments p JOIN topups t ON t.id = p.topup_id
         WHERE p.provider <> t.provider OR p.currency <> t.currency OR p.amount_minor <> t.amount_minor
            OR p.credits <> t.credits OR p.user_id <> t.user_id",
    ),
    (
        "journal_owner",
        "SELECT t.user_id, format('transaction %s (%s)', t.id, t.type),
                format('user %s, but what it references belongs to user %s',
                       t.user_id, COALESCE(g.user_id, p.user_id, r.user_id))
         FROM transactions t
         LEFT JOIN generations g ON g.id = t.generation_id
         LEFT JOIN payments p ON p.id = t.payment_id
         LEFT JOIN refunds r ON r.id = t.refund_id
         WHERE t.user_id <> g.user_id OR t.user_id <> p.user_id OR t.user_id <> r.user_id
         UNION ALL
         SELECT r.user_id, 'refund ' || r.id, format('user %s, but its charge %s is of user %s', r.user_id, p.id, p.user_id)
         FROM refunds r JOIN payments p ON p.id = r.payment_id
         WHERE r.user_id <> p.user_id",
    ),
    (
        "paid_order_credited",
        "SELECT t.user_id, 'topup ' || t.id,
                format('order %s %s %s paid, but none of its charges is credited', t.provider, t.amount_minor, t.currency)
         FROM topups t
         WHERE t.status = 'paid'
           AND NOT EXISTS (SELECT 1 FROM payments p JOIN transactions x ON x.payment_id = p.id AND x.type = 'topup'
                           WHERE p.topup_id = t.id)",
    ),
    (
        "succeeded_with_result",
        "SELECT user_id, 'generation ' || id,
                format('succeeded, but result_key %s and preview_key %s',
                       COALESCE(result_key, 'missing'), COALESCE(preview_key, 'missing'))
         FROM generations
         WHERE status = 'succeeded' AND erased_at IS NULL AND (result_key IS NULL OR preview_key IS NULL)",
    ),
    (
        "external_refund_matches_refund",
        "SELECT e.user_id, 'external refund ' || e.provider_refund_id,
                format('charge %s of user %s, %s credits deducted; its refund %s is %s of charge %s of user %s for %s credits (%s)',
                       e.payment_id, e.user_id, e.deducted, r.id, COALESCE(r.status, 'missing'),
                       r.payment_id, r.user_id, r.credits, COALESCE(r.provider_refund_id, 'no provider id'))
         FROM external_refunds e
         LEFT JOIN refunds r ON r.id = e.refund_id
         JOIN payments p ON p.id = e.payment_id
         WHERE e.user_id <> p.user_id
            OR (e.refund_id IS NULL AND e.deducted <> 0)
            OR (e.refund_id IS NOT NULL AND (r.payment_id <> e.payment_id OR r.user_id <> e.user_id
                OR r.credits <> e.deducted OR r.status <> 'succeeded'
                OR r.provider_refund_id IS DISTINCT FROM e.provider_refund_id))",
    ),
    (
        "refund_held_stale",
        "SELECT user_id, 'refund ' || id, format('held since %s (over an hour)', created_at)
         FROM refunds WHERE status = 'held' AND created_at < now() - interval '1 hour'",
    ),
    (
        "generation_past_deadline",
        "SELECT user_id, 'generation ' || id, format('%s, its deadline %s passed over an hour ago', status, deadline)
         FROM generations WHERE status IN ('queued', 'processing') AND deadline < now() - interval '1 hour'",
    ),
    (
        "charge_pending_stale",
        "SELECT user_id, format('payment %s (%s %s)', id, provider, payment_id),
                format('%s since %s (over 24 hours)', status, created_at)
         FROM payments
         WHERE status IN ('pending', 'waiting_for_capture') AND created_at < now() - interval '24 hours'",
    ),
    (
        "update_stuck",
        "SELECT NULL::BIGINT, 'update ' || update_id,
                format('received %s, still not handled (step %s)', received_at, COALESCE(step, 'none'))
         FROM telegram_updates WHERE state <> 'handled' AND received_at < now() - interval '1 hour'",
    ),
    (
        "result_undelivered",
        "SELECT g.user_id, 'generation ' || g.id,
                format('succeeded %s, never delivered', COALESCE(g.completed_at, g.created_at))
         FROM generations g JOIN users u ON u.telegram_id = g.user_id
         WHERE g.status = 'succeeded' AND g.file_id IS NULL AND g.erased_at IS NULL
           AND u.is_active AND u.deleted_at IS NULL
           AND COALESCE(g.completed_at, g.created_at) < now() - interval '1 hour'",
    ),
];

/// The names of every check, in the order they run.
pub fn check_names() -> Vec<&'static str> {
    all_checks().map(|(name, _)| *name).collect()
}

/// The ledger's checks, then those of bonus money.
fn all_checks() -> impl Iterator<Item = &'static (&'static str, &'static str)> {
    CHECKS.iter().chain(bonus::CHECKS)
}

/// Runs every check in one repeatable-read snapshot, so concurrent traffic cannot make a
/// consistent database look inconsistent.
pub async fn run(conn: &mut PgConnection) -> sqlx::Result<Report> {
    let mut tx = conn.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
    let report = run_checks(&mut tx).await?;
    tx.rollback().await?;
    Ok(report)
}

async fn run_checks(conn: &mut PgConnection) -> sqlx::Result<Report> {
    let mut violations = Vec::new();
    for (check, sql) in all_checks() {
        let limited = format!("SELECT * FROM ({sql}) v LIMIT {LIMIT_PER_CHECK}");
        let rows: Vec<(Option<i64>, Option<String>, Option<String>)> =
            sqlx::query_as(&limited).fetch_all(&mut *conn).await?;
        violations.extend(rows.into_iter().map(|(user_id, subject, detail)| Violation {
            check,
            user_id,
            subject: subject.unwrap_or_default(),
            detail: detail.unwrap_or_default(),
        }));
    }
    let totals: (i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM users), (SELECT COUNT(*) FROM transactions),
                (SELECT COUNT(*) FROM generations), (SELECT COUNT(*) FROM payments),
                (SELECT COUNT(*) FROM refunds)",
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(Report {
        clean: violations.is_empty(),
        checks: check_names(),
        totals: Totals {
            users: totals.0,
            journal_rows: totals.1,
            generations: totals.2,
            charges: totals.3,
            refunds: totals.4,
        },
        violations,
    })
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for v in &self.violations {
            writeln!(f, "VIOLATION {}: {}: {}", v.check, v.subject, v.detail)?;
        }
        let t = &self.totals;
        let verdict =
            if self.clean { "clean".to_owned() } else { format!("{} violation(s)", self.violations.len()) };
        write!(
            f,
            "audit {verdict}: {} checks over {} users, {} journal rows, {} generations, {} charges, {} refunds",
            self.checks.len(),
            t.users,
            t.journal_rows,
            t.generations,
            t.charges,
            t.refunds
        )
    }
}
