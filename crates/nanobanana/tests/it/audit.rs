//! `nanobanana audit` catches each kind of corruption: a healthy ledger is clean, and each
//! check, broken on purpose with raw SQL, makes the command exit 1 naming it.

use std::process::Output;

use nanobanana::ledger::{self, RefundHold, Settlement};
use uuid::Uuid;

use crate::support::{credits_of, TestDb};

const ALICE: i64 = 2001;
const BOB: i64 = 2002;

/// A ledger with every kind of movement: charges, generations in every state, refunds in
/// every state and an adjustment.
async fn healthy() -> TestDb {
    let db = TestDb::new().await;
    db.user(ALICE).await;
    db.user_with(BOB, 30).await;
    let payment = db.succeeded_charge(ALICE, 200).await;
    db.credit(payment).await.unwrap();
    // Bonus: the first reserve takes 10 of it, the released one 5, the running one 5.
    db.bonus(ALICE, 15).await;
    let done = db.request_generation(ALICE, 10).await.unwrap();
    let epoch = db.start(done).await;
    db.settle(done, epoch, Settlement::Commit).await.unwrap();
    // As the worker leaves it: stored and delivered.
    sqlx::query("UPDATE generations SET result_key = 'r', preview_key = 'p', file_id = 'f' WHERE id = $1")
        .bind(done)
        .execute(&db.pool)
        .await
        .unwrap();
    let failed = db.request_generation(ALICE, 20).await.unwrap();
    let epoch = db.start(failed).await;
    db.settle(failed, epoch, Settlement::Release { error: "blocked" }).await.unwrap();
    let running = db.request_generation(ALICE, 10).await.unwrap();
    db.start(running).await;
    db.request_generation(BOB, 10).await.unwrap();
    let mut tx = db.pool.begin().await.unwrap();
    for (credits, finish) in [(10, Some(true)), (15, Some(false)), (5, None)] {
        let refund_id = Uuid::new_v4();
        let hold = RefundHold {
            refund_id,
            payment_id: payment,
            credits: credits_of(credits),
            amount_minor: credits * 100,
            reason: Some("asked"),
        };
        ledger::refund_hold(&mut tx, &hold).await.unwrap();
        match finish {
            Some(true) => assert!(ledger::refund_commit(&mut tx, refund_id, Some("rf")).await.unwrap()),
            Some(false) => {
                ledger::refund_release(&mut tx, refund_id).await.unwrap();
            }
            None => {}
        }
    }
    tx.commit().await.unwrap();
    db
}

fn audit_command(db: &TestDb, json: bool) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_nanobanana"));
    command.arg("audit").env("DATABASE_URL", db.url.as_str()).env("RUST_LOG", "warn");
    if json {
        command.arg("--json");
    }
    command.output().expect("run nanobanana audit")
}

#[tokio::test]
async fn a_healthy_ledger_is_clean() {
    let db = healthy().await;
    let output = audit_command(&db, false);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains(&format!("audit clean: {} checks over 2 users", CORRUPTIONS.len())), "{stdout}");
    let json = audit_command(&db, true);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).expect("one JSON object");
    assert_eq!(report["clean"], true);
    assert_eq!(report["totals"]["refunds"], 3);
}

/// Each check and a way to break exactly what it guards.
const CORRUPTIONS: &[(&str, &str)] = &[
    (
        "negative_balance",
        "ALTER TABLE balances DROP CONSTRAINT balances_non_negative, DROP CONSTRAINT balances_bonus_within;
         UPDATE balances SET credits_available = -5 WHERE user_id = 2002",
    ),
    (
        "balance_vs_journal",
        "UPDATE balances SET credits_available = credits_available + 7 WHERE user_id = 2001",
    ),
    (
        "reserved_vs_generations",
        "UPDATE generations SET status = 'queued' WHERE status = 'processing';
         UPDATE generations SET cost = cost + 1, status = 'processing' WHERE user_id = 2002",
    ),
    (
        "journal_running_balance",
        "UPDATE transactions SET balance_after = balance_after + 1
         WHERE id = (SELECT MIN(id) FROM transactions WHERE user_id = 2001)",
    ),
    (
        "journal_shape",
        "UPDATE transactions SET delta_available = 0, delta_reserved = amount WHERE type = 'topup'",
    ),
    ("charge_credited_once", "DELETE FROM transactions WHERE type = 'topup'"),
    ("credit_without_success", "UPDATE payments SET status = 'canceled'"),
    ("generation_reserved_once", "DELETE FROM transactions WHERE type = 'reserve' AND user_id = 2002"),
    ("generation_settled_once", "UPDATE generations SET status = 'processing' WHERE status = 'succeeded'"),
    ("settlement_matches_status", "UPDATE generations SET status = 'failed' WHERE status = 'succeeded'"),
    (
        "commit_matches_charge",
        "ALTER TABLE generations DROP CONSTRAINT generations_charged_within_cost;
         UPDATE generations SET charged = cost - 1 WHERE status = 'succeeded'",
    ),
    ("refund_held_once", "DELETE FROM transactions WHERE type = 'refund' AND amount = 5"),
    ("refund_release_matches_status", "UPDATE refunds SET status = 'failed' WHERE status = 'succeeded'"),
    ("dangling_reference", "UPDATE generations SET user_id = 999999 WHERE status = 'succeeded'"),
    ("debt_vs_refunds", "INSERT INTO credit_debts (user_id, owed) VALUES (2001, 5)"),
    ("refund_exceeds_charge", "UPDATE payments SET credits = 12, amount_minor = 1200"),
    ("charge_matches_order", "UPDATE topups SET amount_minor = amount_minor + 100"),
    ("journal_owner", "UPDATE refunds SET user_id = 2002 WHERE status = 'succeeded'"),
    (
        "paid_order_credited",
        "INSERT INTO topups (user_id, provider, pack, currency, amount_minor, credits, status)
         VALUES (2002, 'yookassa', 'rub100', 'RUB', 10000, 100, 'paid')",
    ),
    ("succeeded_with_result", "UPDATE generations SET preview_key = NULL WHERE status = 'succeeded'"),
    (
        "external_refund_matches_refund",
        "INSERT INTO external_refunds (provider_refund_id, payment_id, user_id, amount_minor, credits, deducted, debt, refund_id)
         SELECT 'dash-1', payment_id, user_id, 300, 3, 3, 0, id FROM refunds WHERE status = 'succeeded'",
    ),
    ("refund_held_stale", "UPDATE refunds SET created_at = now() - interval '2 hours' WHERE status = 'held'"),
    (
        "generation_past_deadline",
        "UPDATE generations SET deadline = now() - interval '2 hours' WHERE status = 'processing'",
    ),
    (
        "charge_pending_stale",
        "UPDATE payments SET status = 'pending', created_at = now() - interval '25 hours';
         DELETE FROM transactions WHERE type = 'topup'",
    ),
    (
        "update_stuck",
        "INSERT INTO telegram_updates (update_id, kind, step, received_at, body_md5)
         VALUES (1, 'message', 'payment', now() - interval '2 hours', md5('{}'))",
    ),
    (
        "result_undelivered",
        "UPDATE generations SET file_id = NULL, completed_at = now() - interval '2 hours',
                               created_at = now() - interval '2 hours'
         WHERE status = 'succeeded'",
    ),
    (
        "bonus_vs_journal",
        "ALTER TABLE balances DROP CONSTRAINT balances_bonus_within;
         UPDATE balances SET bonus_available = bonus_available + 1 WHERE user_id = 2001",
    ),
    ("bonus_shape", "UPDATE transactions SET bonus_delta_available = 1 WHERE type = 'topup'"),
    (
        "bonus_spent_first",
        "UPDATE transactions SET bonus_delta_available = 0, bonus_delta_reserved = 0
         WHERE type = 'reserve' AND bonus_delta_reserved > 0",
    ),
    (
        "bonus_reserved_vs_generations",
        "UPDATE generations SET status = 'queued' WHERE status = 'processing' AND user_id = 2001;
         UPDATE generations SET status = 'failed' WHERE status = 'queued' AND user_id = 2001",
    ),
    ("bonus_source", "UPDATE transactions SET actor = 'a friend' WHERE type = 'bonus'"),
];

#[tokio::test]
async fn every_check_catches_its_corruption_and_the_command_exits_one_naming_it() {
    assert_eq!(
        CORRUPTIONS.iter().map(|(check, _)| *check).collect::<Vec<_>>(),
        nanobanana::audit::check_names(),
        "one corruption per check, in order"
    );
    for (check, sql) in CORRUPTIONS {
        let db = healthy().await;
        db.corrupt(sql).await;
        let output = audit_command(&db, false);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(1), "{check}: {stdout}");
        assert!(stdout.contains(&format!("VIOLATION {check}: ")), "{check} not named in:\n{stdout}");
        let json = audit_command(&db, true);
        assert_eq!(json.status.code(), Some(1));
        let report: serde_json::Value = serde_json::from_slice(&json.stdout).expect("one JSON object");
        let named = report["violations"]
            .as_array()
            .expect("violations")
            .iter()
            .any(|v| v["check"] == *check && !v["subject"].as_str().unwrap_or("").is_empty());
        assert!(named, "{check} missing from {report}");
        db.pool.close().await;
    }
}
