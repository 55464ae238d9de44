//! A model-based property test: random sequences of charge / reserve / start / settle /
//! refund / adjust / bonus / take-back across several users, each step checked against a plain in-memory model
//! of what the ledger must do, balances compared after every step, and the audit clean at
//! the end of every sequence.

use std::collections::HashMap;

use nanobanana::ledger::{self, LedgerError, Outcome, RefundHold, Settled, Settlement};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use uuid::Uuid;

use crate::support::{credits_of, TestDb};

const USERS: i64 = 3;

mod ops;

use ops::{op, Op};

#[derive(Debug, Clone, Copy, PartialEq)]
enum GenState {
    Queued,
    Processing(i64),
    Done,
}

/// What the ledger must do, kept in plain numbers.
#[derive(Default)]
struct Model {
    balances: HashMap<i64, (i64, i64)>,
    /// The bonus part of each balance: (available, reserved).
    bonus: HashMap<i64, (i64, i64)>,
    /// (id, user, cost, state, bonus its reserve took)
    generations: Vec<(Uuid, i64, i64, GenState, i64)>,
    /// (payments.id, user, credits, credits refunded or held)
    charges: Vec<(i64, i64, i64, i64)>,
    /// (id, charge index, credits, finished)
    refunds: Vec<(Uuid, usize, i64, bool)>,
    /// (key, user, deduct, credits)
    keys: Vec<(String, i64, bool, i64)>,
}

struct Case<'a> {
    db: &'a TestDb,
    /// Telegram ids of this case's users; every case gets new ones.
    base: i64,
    model: Model,
}

fn check(condition: bool, message: impl FnOnce() -> String) -> Result<(), TestCaseError> {
    if condition {
        Ok(())
    } else {
        Err(TestCaseError::fail(message()))
    }
}

impl Case<'_> {
    fn uid(&self, user: i64) -> i64 {
        self.base + user
    }

    async fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let db = self.db;
        let fail = |e: LedgerError| TestCaseError::fail(format!("{op:?}: unexpected {e:?}"));
        match op {
            Op::Charge { user, credits, repeat } => {
                let uid = self.uid(*user);
                let payment = db.succeeded_charge(uid, *credits).await;
                check(matches!(db.credit(payment).await.map_err(fail)?, Outcome::Applied(_)), || {
                    format!("{op:?}")
                })?;
                if *repeat {
                    check(db.credit(payment).await.map_err(fail)? == Outcome::AlreadyDone, || {
                        format!("{op:?}")
                    })?;
                }
                self.model.balances.entry(uid).or_default().0 += credits;
                self.model.charges.push((payment, uid, *credits, 0));
            }
            Op::Reserve { user, cost } => {
                let uid = self.uid(*user);
                let balance = self.model.balances.entry(uid).or_default();
                match db.request_generation(uid, *cost).await {
                    Ok(id) => {
                        check(balance.0 >= *cost, || format!("{op:?} succeeded with only {}", balance.0))?;
                        balance.0 -= cost;
                        balance.1 += cost;
                        // Bonus first.
                        let bonus = self.model.bonus.entry(uid).or_default();
                        let taken = bonus.0.min(*cost);
                        bonus.0 -= taken;
                        bonus.1 += taken;
                        self.model.generations.push((id, uid, *cost, GenState::Queued, taken));
                    }
                    Err(LedgerError::Insufficient { available, .. }) => {
                        check(balance.0 < *cost && available == balance.0, || {
                            format!("{op:?} refused at {available}")
                        })?;
                    }
                    Err(e) => return Err(fail(e)),
                }
            }
            Op::Start { generation } => {
                if self.model.generations.is_empty() {
                    return Ok(());
                }
                let i = generation.index(self.model.generations.len());
                let (id, _, _, state, _) = self.model.generations[i];
                let started = nanobanana::jobs::new::start(&mut *db.conn().await, id)
                    .await
                    .map_err(|e| fail(e.into()))?;
                match (state, started) {
                    (GenState::Queued, Some(epoch)) => {
                        self.model.generations[i].3 = GenState::Processing(epoch)
                    }
                    (GenState::Queued, None) => {
                        return Err(TestCaseError::fail(format!("{op:?}: queued but not started")))
                    }
                    (_, Some(_)) => return Err(TestCaseError::fail(format!("{op:?}: started twice"))),
                    (_, None) => {}
                }
            }
            Op::Settle { generation, commit, stale } => {
                if self.model.generations.is_empty() {
                    return Ok(());
                }
                let i = generation.index(self.model.generations.len());
                let (id, uid, cost, state, reserved_bonus) = self.model.generations[i];
                let epoch = match state {
                    GenState::Processing(epoch) if *stale => epoch - 1,
                    GenState::Processing(epoch) => epoch,
                    _ => 1,
                };
                let settlement =
                    if *commit { Settlement::Commit } else { Settlement::Release { error: "model" } };
                let settled = db.settle(id, epoch, settlement).await.map_err(fail)?;
                let expect_now = matches!(state, GenState::Processing(_)) && !stale;
                check(matches!(settled, Settled::Now(_)) == expect_now, || {
                    format!("{op:?} in {state:?}: {settled:?}")
                })?;
                if expect_now {
                    let balance = self.model.balances.entry(uid).or_default();
                    balance.1 -= cost;
                    if !commit {
                        balance.0 += cost;
                    }
                    // The reserve's mix goes back on release; on commit its bonus is spent.
                    let bonus = self.model.bonus.entry(uid).or_default();
                    bonus.1 -= reserved_bonus;
                    if !commit {
                        bonus.0 += reserved_bonus;
                    }
                    self.model.generations[i].3 = GenState::Done;
                }
            }
            Op::RefundHold { charge, credits, reuse } => {
                if self.model.charges.is_empty() {
                    return Ok(());
                }
                let c = charge.index(self.model.charges.len());
                let (payment, uid, charge_credits, refunded) = self.model.charges[c];
                let reused = reuse
                    .filter(|_| !self.model.refunds.is_empty())
                    .map(|r| self.model.refunds[r.index(self.model.refunds.len())]);
                let refund_id = reused.map_or_else(Uuid::new_v4, |r| r.0);
                let hold = RefundHold {
                    refund_id,
                    payment_id: payment,
                    credits: credits_of(*credits),
                    amount_minor: credits * 100,
                    reason: None,
                };
                let mut tx = db.pool.begin().await.map_err(|e| fail(e.into()))?;
                let result = ledger::refund_hold(&mut tx, &hold).await;
                tx.commit().await.map_err(|e| fail(e.into()))?;
                // Only paid credits can be refunded.
                let available = self.model.balances.entry(uid).or_default().0
                    - self.model.bonus.get(&uid).map_or(0, |b| b.0);
                match (result, reused) {
                    (Ok(Outcome::AlreadyDone), Some(_)) => {}
                    (Ok(Outcome::Applied(_)), None) => {
                        check(*credits <= available && *credits <= charge_credits - refunded, || {
                            format!("{op:?} allowed")
                        })?;
                        self.model.balances.entry(uid).or_default().0 -= credits;
                        self.model.charges[c].3 += credits;
                        self.model.refunds.push((refund_id, c, *credits, false));
                    }
                    (Err(LedgerError::ExceedsCharge { refundable, .. }), None) => {
                        check(refundable == charge_credits - refunded && *credits > refundable, || {
                            format!("{op:?}")
                        })?;
                    }
                    (Err(LedgerError::Insufficient { .. }), None) => {
                        check(*credits > available && *credits <= charge_credits - refunded, || {
                            format!("{op:?}")
                        })?;
                    }
                    (other, reused) => {
                        return Err(TestCaseError::fail(format!("{op:?} (reused {reused:?}): {other:?}")));
                    }
                }
            }
            Op::RefundFinish { refund, success } => {
                if self.model.refunds.is_empty() {
                    return Ok(());
                }
                let r = refund.index(self.model.refunds.len());
                let (id, c, credits, finished) = self.model.refunds[r];
                let mut tx = db.pool.begin().await.map_err(|e| fail(e.into()))?;
                let moved = if *success {
                    ledger::refund_commit(&mut tx, id, Some("rf")).await.map_err(fail)?
                } else {
                    matches!(ledger::refund_release(&mut tx, id).await.map_err(fail)?, Outcome::Applied(_))
                };
                tx.commit().await.map_err(|e| fail(e.into()))?;
                check(moved != finished, || format!("{op:?} finished={finished} moved={moved}"))?;
                if !finished {
                    self.model.refunds[r].3 = true;
                    if !success {
                        let uid = self.model.charges[c].1;
                        self.model.balances.entry(uid).or_default().0 += credits;
                        self.model.charges[c].3 -= credits;
                    }
                }
            }
            Op::Adjust { user, deduct, credits, reuse_key } => {
                let uid = self.uid(*user);
                let reused = reuse_key
                    .filter(|_| !self.model.keys.is_empty())
                    .map(|k| self.model.keys[k.index(self.model.keys.len())].clone());
                let key = reused.as_ref().map_or_else(|| Uuid::new_v4().to_string(), |k| k.0.clone());
                let reason =
                    ledger::Reason::parse("model").map_err(|e| TestCaseError::fail(e.to_string()))?;
                let direction = if *deduct { ledger::Direction::Deduct } else { ledger::Direction::Grant };
                let adjustment = ledger::Adjustment {
                    user_id: uid,
                    direction,
                    credits: credits_of(*credits),
                    reason: &reason,
                    actor: "model",
                    idempotency_key: &key,
                };
                let mut tx = db.pool.begin().await.map_err(|e| fail(e.into()))?;
                let result = ledger::adjust(&mut tx, &adjustment).await;
                tx.commit().await.map_err(|e| fail(e.into()))?;
                let balance = self.model.balances.entry(uid).or_default();
                match (result, reused) {
                    (Ok(Outcome::AlreadyDone), Some(k)) => {
                        check(k == (key.clone(), uid, *deduct, *credits), || {
                            format!("{op:?} matched {k:?}")
                        })?;
                    }
                    (Err(LedgerError::KeyReused(_)), Some(k)) => {
                        check(k != (key.clone(), uid, *deduct, *credits), || {
                            format!("{op:?} refused {k:?}")
                        })?;
                    }
                    (Ok(Outcome::Applied(_)), None) => {
                        check(!deduct || balance.0 >= *credits, || format!("{op:?} overdrew"))?;
                        balance.0 += if *deduct { -credits } else { *credits };
                        if *deduct {
                            let bonus = self.model.bonus.entry(uid).or_default();
                            bonus.0 -= bonus.0.min(*credits);
                        }
                        self.model.keys.push((key, uid, *deduct, *credits));
                    }
                    (Err(LedgerError::Insufficient { .. }), None) => {
                        check(*deduct && balance.0 < *credits, || format!("{op:?} refused"))?;
                    }
                    (other, reused) => {
                        return Err(TestCaseError::fail(format!("{op:?} (reused {reused:?}): {other:?}")))
                    }
                }
            }
            Op::Bonus { user, credits, repeat } => self.bonus(op, *user, *credits, *repeat).await?,
            Op::TakeBack { user, credits } => self.take_back(op, *user, *credits).await?,
        }
        self.compare_balances(op).await
    }

    async fn bonus(&mut self, op: &Op, user: i64, credits: i64, repeat: bool) -> Result<(), TestCaseError> {
        let uid = self.uid(user);
        let key = format!("model-bonus:{}", Uuid::new_v4());
        for time in 0..if repeat { 2 } else { 1 } {
            let mut tx = self.db.pool.begin().await.map_err(|e| TestCaseError::fail(e.to_string()))?;
            let outcome = ledger::grant_bonus(
                &mut tx,
                uid,
                credits_of(credits),
                ledger::BonusSource::Promo,
                &key,
                "model",
            )
            .await
            .map_err(|e| TestCaseError::fail(format!("{op:?}: {e:?}")))?;
            tx.commit().await.map_err(|e| TestCaseError::fail(e.to_string()))?;
            check(matches!(outcome, Outcome::Applied(_)) == (time == 0), || {
                format!("{op:?} #{time}: {outcome:?}")
            })?;
        }
        self.model.balances.entry(uid).or_default().0 += credits;
        self.model.bonus.entry(uid).or_default().0 += credits;
        Ok(())
    }

    async fn take_back(&mut self, op: &Op, user: i64, credits: i64) -> Result<(), TestCaseError> {
        let uid = self.uid(user);
        let key = format!("model-back:{}", Uuid::new_v4());
        let mut tx = self.db.pool.begin().await.map_err(|e| TestCaseError::fail(e.to_string()))?;
        let taken =
            ledger::take_back_bonus(&mut tx, uid, credits, ledger::BonusSource::Referral, &key, "model")
                .await
                .map_err(|e| TestCaseError::fail(format!("{op:?}: {e:?}")))?;
        tx.commit().await.map_err(|e| TestCaseError::fail(e.to_string()))?;
        let bonus = self.model.bonus.entry(uid).or_default();
        let expected = bonus.0.min(credits);
        check(taken == expected, || format!("{op:?} took {taken}, model says {expected}"))?;
        bonus.0 -= taken;
        self.model.balances.entry(uid).or_default().0 -= taken;
        Ok(())
    }

    async fn compare_balances(&self, op: &Op) -> Result<(), TestCaseError> {
        for user in 0..USERS {
            let uid = self.uid(user);
            let expected = self.model.balances.get(&uid).copied().unwrap_or_default();
            let actual = self.db.balance(uid).await;
            check(actual == expected, || {
                format!("after {op:?}: user {uid} has {actual:?}, model says {expected:?}")
            })?;
            let bonus = self.model.bonus.get(&uid).copied().unwrap_or_default();
            let actual = self.db.bonus_balance(uid).await;
            check(actual == bonus, || {
                format!("after {op:?}: user {uid} has bonus {actual:?}, model says {bonus:?}")
            })?;
        }
        Ok(())
    }
}

#[test]
fn random_ledger_operations_match_the_model_and_keep_the_audit_clean() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let db = runtime.block_on(TestDb::new());
    let cases = std::env::var("LEDGER_MODEL_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64);
    let mut runner = TestRunner::new(Config {
        cases,
        max_shrink_iters: 200,
        failure_persistence: None,
        ..Config::default()
    });
    let next_base = std::cell::Cell::new(10_000i64);
    let result = runner.run(&prop::collection::vec(op(), 1..40), |ops| {
        next_base.set(next_base.get() + 100);
        let base = next_base.get();
        runtime.block_on(async {
            for user in 0..USERS {
                db.user(base + user).await;
            }
            let mut case = Case { db: &db, base, model: Model::default() };
            for op in &ops {
                case.step(op).await?;
            }
            let report = db.audit().await;
            check(report.clean, || format!("audit after {ops:?}:\n{report}"))
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
