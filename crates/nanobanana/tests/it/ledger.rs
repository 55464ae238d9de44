//! The ledger under concurrency and repetition (DESIGN §1.1, §1.2): every race ends with
//! exactly one movement, and the audit stays clean.

use futures_util::future::join_all;
use nanobanana::db::payments::ChargeStatus;
use nanobanana::ledger::{self, LedgerError, Outcome, RefundHold, Settled, Settlement};
use uuid::Uuid;

use crate::support::{credits_of, TestDb};

const USER: i64 = 1001;

async fn journal_rows(db: &TestDb) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM transactions").fetch_one(&db.pool).await.unwrap()
}

#[tokio::test]
async fn sixty_four_simultaneous_reserves_of_ten_from_a_hundred_exactly_ten_succeed() {
    let db = TestDb::heavy(64).await;
    db.user_with(USER, 100).await;
    let results = join_all((0..64).map(|_| db.request_generation(USER, 10))).await;
    let succeeded = results.iter().filter(|r| r.is_ok()).count();
    let short = results.iter().filter(|r| matches!(r, Err(LedgerError::Insufficient { .. }))).count();
    assert_eq!((succeeded, short), (10, 54), "{results:?}");
    assert_eq!(db.balance(USER).await, (0, 100));
    db.assert_audit_clean().await;
}

#[tokio::test]
async fn a_short_reserve_writes_nothing() {
    let db = TestDb::new().await;
    db.user_with(USER, 5).await;
    let before = journal_rows(&db).await;
    let err = db.request_generation(USER, 10).await.unwrap_err();
    assert!(matches!(err, LedgerError::Insufficient { available: 5, needed: 10 }), "{err:?}");
    assert_eq!(journal_rows(&db).await, before);
    assert_eq!(db.balance(USER).await, (5, 0));
    let generations: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM generations").fetch_one(&db.pool).await.unwrap();
    assert_eq!(generations, 0);
}

async fn race_settlements(db: &TestDb, commits: usize, releases: usize) -> (Uuid, Vec<Settled>) {
    db.user_with(USER, 100).await;
    let id = db.request_generation(USER, 10).await.unwrap();
    let epoch = db.start(id).await;
    let settlements = std::iter::repeat_n(Settlement::Commit, commits)
        .chain(std::iter::repeat_n(Settlement::Release { error: "boom" }, releases));
    let results = join_all(settlements.map(|s| db.settle(id, epoch, s))).await;
    let results: Vec<Settled> = results.into_iter().map(|r| r.expect("settle never errors")).collect();
    let now = results.iter().filter(|r| matches!(r, Settled::Now(_))).count();
    assert_eq!(now, 1, "exactly one settlement: {results:?}");
    db.assert_audit_clean().await;
    (id, results)
}

#[tokio::test]
async fn thirty_two_simultaneous_commits_settle_once() {
    let db = TestDb::heavy(32).await;
    race_settlements(&db, 32, 0).await;
    assert_eq!(db.balance(USER).await, (90, 0));
}

#[tokio::test]
async fn thirty_two_simultaneous_releases_settle_once() {
    let db = TestDb::heavy(32).await;
    race_settlements(&db, 0, 32).await;
    assert_eq!(db.balance(USER).await, (100, 0));
}

#[tokio::test]
async fn commits_racing_releases_settle_once_and_match_the_status() {
    let db = TestDb::heavy(32).await;
    let (id, results) = race_settlements(&db, 16, 16).await;
    let winner = results.iter().find_map(|r| match r {
        Settled::Now(entry) => Some(entry.kind),
        Settled::Stale => None,
    });
    let status: String = sqlx::query_scalar("SELECT status FROM generations WHERE id = $1")
        .bind(id)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    match winner {
        Some(ledger::Kind::Commit) => {
            assert_eq!((status.as_str(), db.balance(USER).await), ("succeeded", (90, 0)))
        }
        Some(ledger::Kind::Release) => {
            assert_eq!((status.as_str(), db.balance(USER).await), ("failed", (100, 0)))
        }
        other => panic!("unexpected winner {other:?}"),
    }
}

#[tokio::test]
async fn a_settle_with_a_stale_lease_epoch_changes_nothing() {
    let db = TestDb::new().await;
    db.user_with(USER, 100).await;
    let id = db.request_generation(USER, 10).await.unwrap();
    let old_epoch = db.start(id).await;
    // Another worker reclaims the job: the lease epoch moves on.
    sqlx::query("UPDATE generations SET lease_epoch = lease_epoch + 1 WHERE id = $1")
        .bind(id)
        .execute(&db.pool)
        .await
        .unwrap();
    let before = journal_rows(&db).await;
    for settlement in [Settlement::Commit, Settlement::Release { error: "late" }] {
        assert_eq!(db.settle(id, old_epoch, settlement).await.unwrap(), Settled::Stale);
    }
    assert_eq!(journal_rows(&db).await, before);
    assert_eq!(db.balance(USER).await, (90, 10));
    let status: String = sqlx::query_scalar("SELECT status FROM generations WHERE id = $1")
        .bind(id)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(status, "processing");
    // The current holder still settles, once.
    assert!(matches!(db.settle(id, old_epoch + 1, Settlement::Commit).await.unwrap(), Settled::Now(_)));
    assert_eq!(db.settle(id, old_epoch + 1, Settlement::Commit).await.unwrap(), Settled::Stale);
    assert_eq!(db.balance(USER).await, (90, 0));
    db.assert_audit_clean().await;
}

#[tokio::test]
async fn a_queued_generation_cannot_be_settled() {
    let db = TestDb::new().await;
    db.user_with(USER, 100).await;
    let id = db.request_generation(USER, 10).await.unwrap();
    assert_eq!(db.settle(id, 0, Settlement::Commit).await.unwrap(), Settled::Stale);
    assert_eq!(db.balance(USER).await, (90, 10));
    db.assert_audit_clean().await;
}

#[tokio::test]
async fn the_same_charge_credited_thirty_two_times_at_once_is_credited_once() {
    let db = TestDb::heavy(32).await;
    db.user(USER).await;
    let payment = db.succeeded_charge(USER, 100).await;
    let results = join_all((0..32).map(|_| db.credit(payment))).await;
    let applied = results.iter().filter(|r| matches!(r, Ok(Outcome::Applied(_)))).count();
    let repeats = results.iter().filter(|r| matches!(r, Ok(Outcome::AlreadyDone))).count();
    assert_eq!((applied, repeats), (1, 31), "{results:?}");
    assert_eq!(db.balance(USER).await, (100, 0));
    let status: String = sqlx::query_scalar(
        "SELECT t.status FROM topups t JOIN payments p ON p.topup_id = t.id WHERE p.id = $1",
    )
    .bind(payment)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(status, "paid");
    db.assert_audit_clean().await;
}

#[tokio::test]
async fn two_distinct_charges_of_one_topup_are_both_credited() {
    let db = TestDb::new().await;
    db.user(USER).await;
    let topup = db.topup(USER, 100).await;
    let first = db.charge(topup, "pay-1", ChargeStatus::Succeeded).await;
    let second = db.charge(topup, "pay-2", ChargeStatus::Succeeded).await;
    assert_ne!(first, second);
    assert!(matches!(db.credit(first).await.unwrap(), Outcome::Applied(_)));
    assert!(matches!(db.credit(second).await.unwrap(), Outcome::Applied(_)));
    assert_eq!(db.balance(USER).await, (200, 0));
    db.assert_audit_clean().await;
}

#[tokio::test]
async fn only_a_succeeded_charge_is_credited() {
    let db = TestDb::new().await;
    db.user(USER).await;
    let topup = db.topup(USER, 100).await;
    let pending = db.charge(topup, "pay-p", ChargeStatus::Pending).await;
    let canceled = db.charge(topup, "pay-c", ChargeStatus::Canceled).await;
    for payment in [pending, canceled] {
        assert!(matches!(db.credit(payment).await, Err(LedgerError::NotSucceeded(p)) if p == payment));
    }
    assert!(matches!(db.credit(9_999).await, Err(LedgerError::UnknownPayment(9_999))));
    // A canceled charge stays canceled even if an older `pending` report arrives late.
    let again = db.charge(topup, "pay-c", ChargeStatus::Pending).await;
    assert_eq!(again, canceled);
    assert!(matches!(db.credit(canceled).await, Err(LedgerError::NotSucceeded(_))));
    assert_eq!(db.balance(USER).await, (0, 0));
    db.assert_audit_clean().await;
}

async fn hold(db: &TestDb, refund_id: Uuid, payment_id: i64, credits: i64) -> Result<Outcome, LedgerError> {
    let mut tx = db.pool.begin().await?;
    let hold = RefundHold {
        refund_id,
        payment_id,
        credits: credits_of(credits),
        amount_minor: credits * 100,
        reason: None,
    };
    let outcome = ledger::refund_hold(&mut tx, &hold).await?;
    tx.commit().await?;
    Ok(outcome)
}

#[tokio::test]
async fn refunds_hold_then_commit_or_release() {
    let db = TestDb::new().await;
    db.user(USER).await;
    let payment = db.succeeded_charge(USER, 100).await;
    db.credit(payment).await.unwrap();
    db.request_generation(USER, 30).await.unwrap();
    // 70 available, 30 reserved: the reserved (spent) part cannot be refunded.
    let too_much = hold(&db, Uuid::new_v4(), payment, 80).await.unwrap_err();
    assert!(matches!(too_much, LedgerError::Insufficient { available: 70, needed: 80 }), "{too_much:?}");

    let kept = Uuid::new_v4();
    assert!(matches!(hold(&db, kept, payment, 40).await.unwrap(), Outcome::Applied(_)));
    assert_eq!(hold(&db, kept, payment, 40).await.unwrap(), Outcome::AlreadyDone);
    assert_eq!(db.balance(USER).await, (30, 30));
    let mut tx = db.pool.begin().await.unwrap();
    assert!(ledger::refund_commit(&mut tx, kept, Some("rf-1")).await.unwrap());
    assert!(!ledger::refund_commit(&mut tx, kept, Some("rf-1")).await.unwrap());
    tx.commit().await.unwrap();

    let failed = Uuid::new_v4();
    assert!(matches!(hold(&db, failed, payment, 20).await.unwrap(), Outcome::Applied(_)));
    assert_eq!(db.balance(USER).await, (10, 30));
    let mut tx = db.pool.begin().await.unwrap();
    assert!(matches!(ledger::refund_release(&mut tx, failed).await.unwrap(), Outcome::Applied(_)));
    assert_eq!(ledger::refund_release(&mut tx, failed).await.unwrap(), Outcome::AlreadyDone);
    // A released refund cannot be committed afterwards.
    assert!(!ledger::refund_commit(&mut tx, failed, None).await.unwrap());
    tx.commit().await.unwrap();
    assert_eq!(db.balance(USER).await, (30, 30));

    // 40 of the charge's 100 are refunded; at most 60 more may ever be.
    let grant_reason = ledger::Reason::parse("goodwill").unwrap();
    let mut tx = db.pool.begin().await.unwrap();
    let grant = ledger::Adjustment {
        user_id: USER,
        direction: ledger::Direction::Grant,
        credits: credits_of(100),
        reason: &grant_reason,
        actor: "test",
        idempotency_key: "goodwill-1",
    };
    ledger::adjust(&mut tx, &grant).await.unwrap();
    tx.commit().await.unwrap();
    let beyond = hold(&db, Uuid::new_v4(), payment, 61).await.unwrap_err();
    assert!(matches!(beyond, LedgerError::ExceedsCharge { refundable: 60, .. }), "{beyond:?}");
    let mut tx = db.pool.begin().await.unwrap();
    assert!(matches!(
        ledger::refund_release(&mut tx, Uuid::new_v4()).await,
        Err(LedgerError::UnknownRefund(_))
    ));
    drop(tx);
    db.assert_audit_clean().await;
}

#[tokio::test]
async fn the_same_refund_held_concurrently_moves_credits_once() {
    let db = TestDb::heavy(16).await;
    db.user(USER).await;
    let payment = db.succeeded_charge(USER, 100).await;
    db.credit(payment).await.unwrap();
    let refund = Uuid::new_v4();
    let results = join_all((0..16).map(|_| hold(&db, refund, payment, 50))).await;
    let applied = results.iter().filter(|r| matches!(r, Ok(Outcome::Applied(_)))).count();
    assert_eq!(applied, 1, "{results:?}");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(db.balance(USER).await, (50, 0));
    db.assert_audit_clean().await;
}

fn adjustment<'a>(
    direction: ledger::Direction,
    credits: i64,
    reason: &'a ledger::Reason,
    key: &'a str,
) -> ledger::Adjustment<'a> {
    ledger::Adjustment {
        user_id: USER,
        direction,
        credits: credits_of(credits),
        reason,
        actor: "cli:test",
        idempotency_key: key,
    }
}

async fn adjust(db: &TestDb, adjustment: &ledger::Adjustment<'_>) -> Result<Outcome, LedgerError> {
    let mut tx = db.pool.begin().await?;
    let outcome = ledger::adjust(&mut tx, adjustment).await?;
    tx.commit().await?;
    Ok(outcome)
}

#[tokio::test]
async fn adjustments_are_idempotent_and_never_overdraw() {
    let db = TestDb::new().await;
    db.user(USER).await;
    let reason = ledger::Reason::parse("compensation for outage").unwrap();
    let grant = adjustment(ledger::Direction::Grant, 50, &reason, "k1");
    assert!(matches!(adjust(&db, &grant).await.unwrap(), Outcome::Applied(_)));
    assert_eq!(adjust(&db, &grant).await.unwrap(), Outcome::AlreadyDone);
    assert_eq!(db.balance(USER).await, (50, 0));

    let other = adjustment(ledger::Direction::Grant, 60, &reason, "k1");
    assert!(matches!(adjust(&db, &other).await, Err(LedgerError::KeyReused(_))));

    let before = journal_rows(&db).await;
    let overdraw = adjustment(ledger::Direction::Deduct, 51, &reason, "k2");
    assert!(matches!(
        adjust(&db, &overdraw).await,
        Err(LedgerError::Insufficient { available: 50, needed: 51 })
    ));
    assert_eq!(journal_rows(&db).await, before);

    let deduct = adjustment(ledger::Direction::Deduct, 50, &reason, "k3");
    assert!(matches!(adjust(&db, &deduct).await.unwrap(), Outcome::Applied(_)));
    // Repeating a deduct that happened is recognised even though the balance is now 0.
    assert_eq!(adjust(&db, &deduct).await.unwrap(), Outcome::AlreadyDone);
    assert_eq!(db.balance(USER).await, (0, 0));

    let mut unknown = adjustment(ledger::Direction::Grant, 5, &reason, "k4");
    unknown.user_id = 424242;
    assert!(matches!(adjust(&db, &unknown).await, Err(LedgerError::UnknownUser(424242))));
    db.assert_audit_clean().await;
}

#[tokio::test]
async fn the_database_itself_refuses_a_second_settlement_and_journal_edits() {
    let db = TestDb::new().await;
    db.user_with(USER, 100).await;
    let id = db.request_generation(USER, 10).await.unwrap();
    let epoch = db.start(id).await;
    db.settle(id, epoch, Settlement::Commit).await.unwrap();
    // Bypassing the ledger: a release after the commit violates the unique settlement index.
    let second = sqlx::query(
        "INSERT INTO transactions (user_id, type, amount, delta_available, delta_reserved,
                                   balance_after, reserved_after, generation_id)
         VALUES ($1, 'release', 10, 10, -10, 100, 0, $2)",
    )
    .bind(USER)
    .bind(id)
    .execute(&db.pool)
    .await
    .unwrap_err();
    assert!(nanobanana::db::is_db_error(&second, "23505"), "{second}");
    // One reserve per generation, one topup per charge, one adjustment per key, whoever writes.
    let payment = db.succeeded_charge(USER, 5).await;
    db.credit(payment).await.unwrap();
    let repeats = [
        format!("'reserve', 10, -10, 10, 80, 10, '{id}', NULL, NULL"),
        format!("'topup', 5, 5, 0, 100, 0, NULL, {payment}, NULL"),
        "'grant', 100, 100, 0, 200, 0, NULL, NULL, 'setup-key'".to_owned(),
    ];
    let key: String = sqlx::query_scalar("SELECT idempotency_key FROM transactions WHERE type = 'grant'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    for values in repeats {
        let values = values.replace("setup-key", &key);
        let sql = format!(
            "INSERT INTO transactions (user_id, type, amount, delta_available, delta_reserved, balance_after,
                                       reserved_after, generation_id, payment_id, idempotency_key)
             VALUES ({USER}, {values})"
        );
        let repeat = sqlx::raw_sql(&sql).execute(&db.pool).await.unwrap_err();
        assert!(nanobanana::db::is_db_error(&repeat, "23505"), "{values}: {repeat}");
    }
    // A reserve that names no generation would escape the one-reserve-per-generation index.
    let unreferenced = sqlx::query(
        "INSERT INTO transactions (user_id, type, amount, delta_available, delta_reserved,
                                   balance_after, reserved_after)
         VALUES ($1, 'reserve', 10, -10, 10, 80, 10)",
    )
    .bind(USER)
    .execute(&db.pool)
    .await
    .unwrap_err();
    assert!(nanobanana::db::is_db_error(&unreferenced, "23514"), "{unreferenced}");
    let negative = sqlx::query("UPDATE balances SET credits_available = -1 WHERE user_id = $1")
        .bind(USER)
        .execute(&db.pool)
        .await
        .unwrap_err();
    assert!(nanobanana::db::is_db_error(&negative, "23514"), "{negative}");
    let edit = sqlx::query("UPDATE transactions SET amount = 1").execute(&db.pool).await.unwrap_err();
    assert!(edit.to_string().contains("append-only"), "{edit}");
    db.assert_audit_clean().await;
}
