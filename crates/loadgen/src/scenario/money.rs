//! The money checks at the end of a run, held against the providers' own books (the fake
//! YooKassa's payments and refunds, the fake Telegram's Stars charges): every succeeded charge
//! credited exactly once, nothing else credited, every refund either committed with the money
//! returned at the provider or released, and every balance equal to its journal.

use std::collections::{BTreeMap, HashMap};

use nanobanana::domain::Kopecks;

use super::check::Counts;
use super::system::System;

/// Runs every money check; fills the payment and refund counts.
pub async fn check(system: &System, counts: &mut Counts, problems: &mut Vec<String>) -> anyhow::Result<()> {
    yookassa_charges(system, counts, problems).await?;
    stars_charges(system, counts, problems).await?;
    refunds(system, counts, problems).await?;
    balances(system, counts, problems).await?;
    let wrong = system
        .count(
            "SELECT COUNT(*) FROM transactions t JOIN payments p ON p.id = t.payment_id
             WHERE t.type = 'topup' AND p.status <> 'succeeded'",
        )
        .await?;
    if wrong > 0 {
        problems.push(format!("{wrong} top-ups credited for charges that did not succeed"));
    }
    counts.credits_sold = system
        .count("SELECT COALESCE(SUM(delta_available), 0)::BIGINT FROM transactions WHERE type = 'topup'")
        .await?;
    counts.credits_spent = system
        .count("SELECT COALESCE(-SUM(delta_reserved), 0)::BIGINT FROM transactions WHERE type = 'commit'")
        .await?;
    Ok(())
}

/// Our charges of `provider`: provider payment id → top-up transactions.
async fn credited(system: &System, provider: &str) -> anyhow::Result<HashMap<String, i64>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT p.payment_id, COUNT(t.id) FROM payments p
         LEFT JOIN transactions t ON t.payment_id = p.id AND t.type = 'topup'
         WHERE p.provider = $1 GROUP BY p.payment_id",
    )
    .bind(provider)
    .fetch_all(&system.pool)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Each succeeded YooKassa payment credited once; canceled and unpaid ones never.
async fn yookassa_charges(
    system: &System,
    counts: &mut Counts,
    problems: &mut Vec<String>,
) -> anyhow::Result<()> {
    let credited = credited(system, "yookassa").await?;
    for payment in system.yk.payments() {
        let id = payment["id"].as_str().unwrap_or_default();
        let times = credited.get(id).copied().unwrap_or(0);
        let (count, want, what) = match payment["status"].as_str() {
            Some("succeeded") => (&mut counts.payments_succeeded, 1, "succeeded"),
            Some("canceled") => (&mut counts.payments_canceled, 0, "canceled"),
            _ => (&mut counts.payments_pending, 0, "unpaid"),
        };
        *count += 1;
        if times != want {
            problems.push(format!("{what} payment {id} credited {times} times"));
        }
    }
    Ok(())
}

/// Each Stars charge Telegram made credited once (a second charge of one order too); no
/// credit for a charge Telegram does not know (an invoice abandoned, declined or expired).
async fn stars_charges(
    system: &System,
    counts: &mut Counts,
    problems: &mut Vec<String>,
) -> anyhow::Result<()> {
    let mut credited = credited(system, "stars").await?;
    counts.stars_invoices = system.count("SELECT COUNT(*) FROM topups WHERE provider = 'stars'").await?;
    let mut per_order: BTreeMap<String, i64> = BTreeMap::new();
    for payment in system.tg.payments() {
        let Some(charge) = payment.telegram_payment_charge_id else {
            counts.stars_unpaid += 1;
            continue;
        };
        counts.stars_charges += 1;
        *per_order.entry(payment.invoice_payload).or_default() += 1;
        let times = credited.remove(&charge).unwrap_or(0);
        if times != 1 {
            problems.push(format!("Stars charge {charge} ({}) credited {times} times", payment.status));
        }
    }
    counts.stars_second_charges = per_order.values().map(|n| n - 1).sum();
    for (charge, times) in credited {
        problems.push(format!("Stars charge {charge} unknown to Telegram credited {times} times"));
    }
    Ok(())
}

/// A refund: id, provider, provider payment id, status, amount, credits, refund and release
/// journal rows.
type RefundRow = (uuid::Uuid, String, String, String, i64, i64, i64, i64);

/// Each refund committed (money back at the provider, credits gone once) or released
/// (credits back once); none left held; the provider returned exactly what was committed.
async fn refunds(system: &System, counts: &mut Counts, problems: &mut Vec<String>) -> anyhow::Result<()> {
    let rows: Vec<RefundRow> = sqlx::query_as(
        "SELECT r.id, p.provider, p.payment_id, r.status, r.amount_minor, r.credits,
                (SELECT COUNT(*) FROM transactions t WHERE t.refund_id = r.id AND t.type = 'refund'),
                (SELECT COUNT(*) FROM transactions t WHERE t.refund_id = r.id AND t.type = 'refund_release')
         FROM refunds r JOIN payments p ON p.id = r.payment_id",
    )
    .fetch_all(&system.pool)
    .await?;
    let mut returned: HashMap<(String, String), i64> = HashMap::new();
    for (id, provider, payment, status, amount, credits, taken, released) in rows {
        let want = match status.as_str() {
            "succeeded" => {
                counts.refunds_committed += 1;
                counts.credits_refunded += credits;
                *returned.entry((provider, payment)).or_default() += amount;
                (1, 0)
            }
            "failed" => {
                counts.refunds_released += 1;
                (1, 1)
            }
            _ => {
                counts.refunds_held += 1;
                problems.push(format!("refund {id} ({provider} {payment}) left {status}"));
                (1, 0)
            }
        };
        if (taken, released) != want {
            problems.push(format!("refund {id} {status}: {taken} holds, {released} releases in the journal"));
        }
    }
    for payment in system.yk.payments() {
        let id = payment["id"].as_str().unwrap_or_default().to_owned();
        let value = payment["refunded_amount"]["value"].as_str().unwrap_or("0");
        let at_provider = Kopecks::parse_rubles(value).map(Kopecks::get).unwrap_or(-1);
        let ours = returned.remove(&("yookassa".to_owned(), id.clone())).unwrap_or(0);
        if at_provider != ours {
            problems.push(format!(
                "YooKassa payment {id}: {value} ₽ refunded there, {ours} kopecks committed here"
            ));
        }
    }
    for payment in system.tg.payments() {
        let Some(charge) = payment.telegram_payment_charge_id else { continue };
        let ours = returned.remove(&("stars".to_owned(), charge.clone())).is_some();
        if ours != (payment.status == "refunded") {
            problems.push(format!(
                "Stars charge {charge} is {} at Telegram; refund committed: {ours}",
                payment.status
            ));
        }
    }
    for ((provider, payment), amount) in returned {
        problems
            .push(format!("{provider} {payment}: {amount} committed as refunded, unknown to the provider"));
    }
    Ok(())
}

/// Every balance equals the sum of its journal.
async fn balances(system: &System, counts: &mut Counts, problems: &mut Vec<String>) -> anyhow::Result<()> {
    let rows: Vec<(i64, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT b.user_id, b.credits_available, b.credits_reserved,
                COALESCE(SUM(t.delta_available), 0)::BIGINT, COALESCE(SUM(t.delta_reserved), 0)::BIGINT
         FROM balances b LEFT JOIN transactions t ON t.user_id = b.user_id
         GROUP BY b.user_id, b.credits_available, b.credits_reserved",
    )
    .fetch_all(&system.pool)
    .await?;
    counts.balances_checked = rows.len() as i64;
    for (user, available, reserved, journal_available, journal_reserved) in rows {
        if (available, reserved) != (journal_available, journal_reserved) {
            problems.push(format!(
                "user {user}: balance {available}+{reserved} reserved, journal {journal_available}+{journal_reserved}"
            ));
        }
    }
    Ok(())
}
