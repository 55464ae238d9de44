//! Bonus money in the ledger (DESIGN §10 "Growth money is bonus money"): spent before paid
//! credits, a released reserve gives back the mix it took, a refund never returns money for
//! bonus credits, and the audit stays clean.

use nanobanana::domain::ImageSize;
use nanobanana::ledger::{self, LedgerError, Outcome, RefundHold, Settlement};
use uuid::Uuid;

use crate::support::{credits_of, TestDb};

const USER: i64 = 3101;

async fn hold(db: &TestDb, payment: i64, credits: i64) -> Result<Outcome, LedgerError> {
    let mut tx = db.pool.begin().await?;
    let hold = RefundHold {
        refund_id: Uuid::new_v4(),
        payment_id: payment,
        credits: credits_of(credits),
        amount_minor: credits * 100,
        reason: Some("asked"),
    };
    let outcome = ledger::refund_hold(&mut tx, &hold).await?;
    tx.commit().await?;
    Ok(outcome)
}

async fn generate(db: &TestDb, cost: i64, settlement: Settlement<'_>) {
    let id = db.request_generation(USER, cost).await.expect("reserved");
    let epoch = db.start(id).await;
    db.settle(id, epoch, settlement).await.expect("settled");
}

#[tokio::test]
async fn bonus_is_spent_first_and_a_refund_returns_only_the_unspent_paid_credits() {
    let db = TestDb::new().await;
    db.user(USER).await;
    db.bonus(USER, 10).await;
    let payment = db.succeeded_charge(USER, 100).await;
    db.credit(payment).await.unwrap();
    assert_eq!((db.balance(USER).await, db.bonus_balance(USER).await), ((110, 0), (10, 0)));

    // Two pictures of 20: the first takes the 10 bonus and 10 paid, the second 20 paid.
    let first = db.request_generation(USER, 20).await.unwrap();
    assert_eq!(db.bonus_balance(USER).await, (0, 10), "the reserve took the bonus first");
    let epoch = db.start(first).await;
    db.settle(first, epoch, Settlement::Commit).await.unwrap();
    generate(&db, 20, Settlement::Commit).await;
    assert_eq!((db.balance(USER).await, db.bonus_balance(USER).await), ((70, 0), (0, 0)));

    // 70 paid credits are unspent: the charge's 100 cannot all come back, 70 can.
    let err = hold(&db, payment, 71).await.unwrap_err();
    assert!(matches!(err, LedgerError::Insufficient { available: 70, needed: 71 }), "{err:?}");
    assert!(matches!(hold(&db, payment, 70).await.unwrap(), Outcome::Applied(_)));
    assert_eq!(db.balance(USER).await, (0, 0));
    db.assert_audit_clean().await;
}

#[tokio::test]
async fn a_refund_never_takes_bonus_credits() {
    let db = TestDb::new().await;
    db.user(USER).await;
    let payment = db.succeeded_charge(USER, 30).await;
    db.credit(payment).await.unwrap();
    db.bonus(USER, 50).await;
    // The first picture spends bonus only: the 30 paid stay refundable.
    generate(&db, 25, Settlement::Commit).await;
    assert_eq!((db.balance(USER).await, db.bonus_balance(USER).await), ((55, 0), (25, 0)));
    let err = hold(&db, payment, 31).await.unwrap_err();
    assert!(matches!(err, LedgerError::ExceedsCharge { refundable: 30, .. }), "{err:?}");
    assert!(matches!(hold(&db, payment, 30).await.unwrap(), Outcome::Applied(_)));
    assert_eq!((db.balance(USER).await, db.bonus_balance(USER).await), ((25, 0), (25, 0)));
    db.assert_audit_clean().await;
}

#[tokio::test]
async fn a_release_gives_back_exactly_the_mix_the_reserve_took() {
    let db = TestDb::new().await;
    db.user_with(USER, 100).await;
    db.bonus(USER, 10).await;
    let id = db.request_generation(USER, 30).await.unwrap();
    assert_eq!((db.balance(USER).await, db.bonus_balance(USER).await), ((80, 30), (0, 10)));
    // Bonus that arrives while it runs stays bonus, beside what comes back.
    db.bonus(USER, 5).await;
    let epoch = db.start(id).await;
    db.settle(id, epoch, Settlement::Release { error: "blocked" }).await.unwrap();
    assert_eq!((db.balance(USER).await, db.bonus_balance(USER).await), ((115, 0), (15, 0)));
    db.assert_audit_clean().await;
}

#[tokio::test]
async fn a_commit_charging_less_spends_the_bonus_part_first() {
    let db = TestDb::new().await;
    db.user_with(USER, 100).await;
    db.bonus(USER, 10).await;
    // Reserved 30 (10 bonus + 20 paid); a smaller picture charges 15: 10 bonus + 5 paid spent.
    let smaller = Settlement::CommitSmaller { charged: credits_of(15), delivered: ImageSize::K1 };
    generate(&db, 30, smaller).await;
    assert_eq!((db.balance(USER).await, db.bonus_balance(USER).await), ((95, 0), (0, 0)));
    // And with more bonus than the charge: the unspent bonus comes back as bonus.
    db.bonus(USER, 20).await;
    let smaller = Settlement::CommitSmaller { charged: credits_of(5), delivered: ImageSize::K1 };
    generate(&db, 30, smaller).await;
    assert_eq!((db.balance(USER).await, db.bonus_balance(USER).await), ((110, 0), (15, 0)));
    db.assert_audit_clean().await;
}

#[tokio::test]
async fn a_deduct_and_a_take_back_spend_bonus_first_and_a_bonus_key_gives_once() {
    let db = TestDb::new().await;
    db.user_with(USER, 50).await;
    let mut tx = db.pool.begin().await.unwrap();
    let source = ledger::BonusSource::Starter;
    let first =
        ledger::grant_bonus(&mut tx, USER, credits_of(20), source, "starter:test", "starter").await.unwrap();
    let again =
        ledger::grant_bonus(&mut tx, USER, credits_of(20), source, "starter:test", "starter").await.unwrap();
    assert!(matches!((first, again), (Outcome::Applied(_), Outcome::AlreadyDone)));
    let taken = ledger::take_back_bonus(&mut tx, USER, 15, ledger::BonusSource::Referral, "back:1", "test")
        .await
        .unwrap();
    let more = ledger::take_back_bonus(&mut tx, USER, 15, ledger::BonusSource::Referral, "back:2", "test")
        .await
        .unwrap();
    let none = ledger::take_back_bonus(&mut tx, USER, 15, ledger::BonusSource::Referral, "back:3", "test")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!((taken, more, none), (15, 5, 0), "only unspent bonus is taken back");
    assert_eq!((db.balance(USER).await, db.bonus_balance(USER).await), ((50, 0), (0, 0)));
    db.assert_audit_clean().await;
}
