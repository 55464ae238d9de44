//! Jobs (DESIGN §1.4, §4 "Worker"): claims go to one worker each, expired leases are taken
//! over with a higher epoch, a holder whose epoch is gone changes nothing, retries and
//! hand-backs leave the ledger alone, and the deadline sweep releases exactly once.

mod signals;

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures_util::future::join_all;
use nanobanana::domain::Model;
use nanobanana::jobs::{self, Claimed};
use nanobanana::ledger::{self, Settled, Settlement};
use uuid::Uuid;

use crate::support::{credits_of, TestDb};

const USER: i64 = 2001;
const LEASE: Duration = Duration::from_secs(30);

async fn claim(db: &TestDb, worker: &str, limit: u32) -> Vec<Claimed> {
    jobs::claim(&mut *db.conn().await, worker, LEASE, limit).await.expect("claim")
}

async fn claim_one(db: &TestDb, worker: &str) -> Claimed {
    let mut claimed = claim(db, worker, 1).await;
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    claimed.remove(0)
}

/// Runs `sql` with `$1` bound to generation `id` (moving its clock instead of waiting).
async fn update(db: &TestDb, id: Uuid, sql: &str) {
    let done = sqlx::query(sql).bind(id).execute(&db.pool).await.expect(sql).rows_affected();
    assert_eq!(done, 1, "{sql}");
}

async fn expire_lease(db: &TestDb, id: Uuid) {
    update(db, id, "UPDATE generations SET locked_until = now() - interval '1 second' WHERE id = $1").await;
}

async fn state(db: &TestDb, id: Uuid) -> (String, i64, i32, Option<String>) {
    sqlx::query_as("SELECT status, lease_epoch, attempts, worker_id FROM generations WHERE id = $1")
        .bind(id)
        .fetch_one(&db.pool)
        .await
        .expect("generation")
}

async fn journal_rows(db: &TestDb) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM transactions").fetch_one(&db.pool).await.expect("count")
}

#[tokio::test]
async fn eight_claimers_take_fifty_jobs_each_exactly_once() {
    let db = TestDb::heavy(10).await;
    db.user_with(USER, 500).await;
    let mut ids = HashSet::new();
    for _ in 0..50 {
        ids.insert(db.request_generation(USER, 10).await.expect("request"));
    }
    let claimers = (0..8).map(|n| {
        let db = &db;
        async move {
            let mut mine = Vec::new();
            loop {
                let batch = claim(db, &format!("w{n}"), 3).await;
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch);
            }
        }
    });
    let claimed: Vec<Claimed> = join_all(claimers).await.into_iter().flatten().collect();
    let claimed_ids: HashSet<Uuid> = claimed.iter().map(|c| c.id).collect();
    assert_eq!(claimed.len(), 50, "each job claimed once");
    assert_eq!(claimed_ids, ids);
    assert!(claimed.iter().all(|c| c.epoch == 1 && c.attempts == 1 && c.user_id == USER), "{claimed:?}");
    assert!(claim(&db, "late", 10).await.is_empty(), "live leases are not taken again");
    db.assert_audit_clean().await;
}

#[tokio::test]
async fn a_generation_gets_its_deadline_at_insert() {
    let db = TestDb::new().await;
    db.user_with(USER, 100).await;
    let by_default = db.request_generation(USER, 10).await.expect("request");
    let id = Uuid::new_v4();
    let generation = nanobanana::jobs::new::NewGeneration {
        id,
        user_id: USER,
        prompt: "a banana",
        model: Model::parse("nb21").expect("a catalog key"),
        model_id: None,
        image_size: None,
        aspect_ratio: "1:1",
        cost: credits_of(10),
        source_key: "deadline",
    };
    let mut tx = db.pool.begin().await.expect("begin");
    ledger::reserve(&mut tx, USER, id, credits_of(10)).await.expect("reserve");
    let deadline = Some(Duration::from_secs(120));
    assert!(nanobanana::jobs::new::insert_with_deadline(&mut tx, &generation, deadline)
        .await
        .expect("insert"));
    tx.commit().await.expect("commit");
    let seconds_left = |id: Uuid| {
        sqlx::query_scalar::<_, f64>(
            "SELECT EXTRACT(EPOCH FROM deadline - now())::float8 FROM generations WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&db.pool)
    };
    let (default_left, set_left) =
        (seconds_left(by_default).await.expect("d"), seconds_left(id).await.expect("d"));
    assert!((850.0..=900.0).contains(&default_left), "{default_left}");
    assert!((60.0..=120.0).contains(&set_left), "{set_left}");
}

#[tokio::test]
async fn a_job_due_later_is_not_claimed_until_due() {
    let db = TestDb::new().await;
    db.user_with(USER, 100).await;
    let id = db.request_generation(USER, 10).await.expect("request");
    update(&db, id, "UPDATE generations SET run_after = now() + interval '1 hour' WHERE id = $1").await;
    assert!(claim(&db, "w1", 10).await.is_empty());
    update(&db, id, "UPDATE generations SET run_after = now() - interval '1 second' WHERE id = $1").await;
    assert_eq!(claim_one(&db, "w1").await.id, id);
    assert_eq!(state(&db, id).await, ("processing".into(), 1, 1, Some("w1".into())));
}

#[tokio::test]
async fn an_expired_lease_is_reclaimed_and_the_old_holder_changes_nothing() {
    let db = TestDb::new().await;
    db.user_with(USER, 100).await;
    let id = db.request_generation(USER, 10).await.expect("request");
    let first = claim_one(&db, "w1").await;
    assert!(claim(&db, "w2", 10).await.is_empty(), "a live lease is not taken");
    expire_lease(&db, id).await;
    let second = claim_one(&db, "w2").await;
    assert_eq!((second.id, second.epoch, second.attempts), (id, first.epoch + 1, 2));

    let (balance, journal) = (db.balance(USER).await, journal_rows(&db).await);
    let mut conn = db.conn().await;
    assert!(!jobs::heartbeat(&mut conn, id, first.epoch, LEASE).await.expect("heartbeat"));
    let later = chrono::Utc::now() + chrono::Duration::seconds(5);
    assert!(!jobs::retry_later(&mut conn, id, first.epoch, later, "503").await.expect("retry"));
    assert!(!jobs::hand_back(&mut conn, id, first.epoch).await.expect("hand back"));
    drop(conn);
    for settlement in [Settlement::Commit, Settlement::Release { error: "late" }] {
        assert_eq!(db.settle(id, first.epoch, settlement).await.expect("settle"), Settled::Stale);
    }
    assert_eq!((db.balance(USER).await, journal_rows(&db).await), (balance, journal));
    assert_eq!(state(&db, id).await, ("processing".into(), second.epoch, 2, Some("w2".into())));

    assert!(matches!(
        db.settle(id, second.epoch, Settlement::Commit).await.expect("settle"),
        Settled::Now(_)
    ));
    assert_eq!(db.balance(USER).await, (90, 0));
    db.assert_audit_clean().await;
}

#[tokio::test]
async fn a_heartbeat_extends_the_lease_so_it_is_not_reclaimed() {
    let db = TestDb::new().await;
    db.user_with(USER, 100).await;
    let id = db.request_generation(USER, 10).await.expect("request");
    let held = claim_one(&db, "w1").await;
    expire_lease(&db, id).await;
    let extended = jobs::heartbeat(&mut *db.conn().await, id, held.epoch, LEASE).await.expect("heartbeat");
    assert!(extended, "the holder still has the epoch");
    assert!(claim(&db, "w2", 10).await.is_empty(), "the extended lease is live");
    let live: bool =
        sqlx::query_scalar("SELECT locked_until > now() + interval '20 seconds' FROM generations")
            .fetch_one(&db.pool)
            .await
            .expect("lease");
    assert!(live);
}

#[tokio::test]
async fn retry_later_requeues_without_touching_the_ledger() {
    let db = TestDb::new().await;
    db.user_with(USER, 100).await;
    let id = db.request_generation(USER, 10).await.expect("request");
    let held = claim_one(&db, "w1").await;
    let journal = journal_rows(&db).await;
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    let requeued = jobs::retry_later(&mut *db.conn().await, id, held.epoch, later, "gemini 503").await;
    assert!(requeued.expect("retry"));
    assert_eq!(state(&db, id).await, ("queued".into(), held.epoch, 1, None));
    assert_eq!((db.balance(USER).await, journal_rows(&db).await), ((90, 10), journal));
    assert!(claim(&db, "w2", 10).await.is_empty(), "not due before its backoff");
    assert_eq!(db.settle(id, held.epoch, Settlement::Commit).await.expect("settle"), Settled::Stale);
    let last_error: Option<String> = sqlx::query_scalar("SELECT last_error FROM generations")
        .fetch_one(&db.pool)
        .await
        .expect("last_error");
    assert_eq!(last_error.as_deref(), Some("gemini 503"));

    update(&db, id, "UPDATE generations SET run_after = now() WHERE id = $1").await;
    let again = claim_one(&db, "w2").await;
    assert_eq!((again.epoch, again.attempts), (held.epoch + 1, 2));
    let settled = db.settle(id, again.epoch, Settlement::Release { error: "retries exhausted" }).await;
    assert!(matches!(settled.expect("settle"), Settled::Now(_)));
    assert_eq!(db.balance(USER).await, (100, 0));
    db.assert_audit_clean().await;
}

#[tokio::test]
async fn hand_back_requeues_at_once_without_counting_the_attempt() {
    let db = TestDb::new().await;
    db.user_with(USER, 100).await;
    let id = db.request_generation(USER, 10).await.expect("request");
    let held = claim_one(&db, "w1").await;
    let mut conn = db.conn().await;
    assert!(jobs::hand_back(&mut conn, id, held.epoch).await.expect("hand back"));
    assert!(!jobs::hand_back(&mut conn, id, held.epoch).await.expect("hand back"), "only once");
    drop(conn);
    assert_eq!(state(&db, id).await, ("queued".into(), held.epoch, 0, None));
    let next = claim_one(&db, "w2").await;
    assert_eq!((next.epoch, next.attempts), (held.epoch + 1, 1));
    assert_eq!(db.balance(USER).await, (90, 10));
    db.assert_audit_clean().await;
}

#[tokio::test]
async fn the_deadline_sweep_fails_overdue_jobs_and_releases_once() {
    let db = TestDb::new().await;
    db.user_with(USER, 100).await;
    let queued = db.request_generation(USER, 10).await.expect("request");
    let abandoned = db.request_generation(USER, 10).await.expect("request");
    let overrunning = db.request_generation(USER, 10).await.expect("request");
    let on_time = db.request_generation(USER, 10).await.expect("request");
    let abandoned_epoch = db.start(abandoned).await;
    let overrunning_epoch = db.start(overrunning).await;
    expire_lease(&db, abandoned).await;
    for id in [queued, abandoned, overrunning] {
        update(&db, id, "UPDATE generations SET deadline = now() - interval '1 second' WHERE id = $1").await;
    }
    assert!(claim(&db, "w2", 10).await.iter().all(|c| c.id == on_time), "overdue jobs are not claimed");

    let grace = Duration::from_secs(60);
    let expired = jobs::expire_overdue(&db.pool, grace, 100).await.expect("sweep");
    let expired_ids: HashSet<Uuid> = expired.iter().map(|e| e.id).collect();
    assert_eq!(expired_ids, HashSet::from([queued, abandoned]));
    assert!(jobs::expire_overdue(&db.pool, grace, 100).await.expect("sweep").is_empty(), "only once");
    assert_eq!(state(&db, queued).await.0, "failed");
    assert_eq!(
        db.settle(abandoned, abandoned_epoch, Settlement::Commit).await.expect("settle"),
        Settled::Stale
    );
    assert_eq!(db.balance(USER).await, (80, 20));

    // Past the grace, a holder that overran loses the job too, and cannot settle it.
    update(&db, overrunning, "UPDATE generations SET deadline = now() - interval '2 minutes' WHERE id = $1")
        .await;
    let expired = jobs::expire_overdue(&db.pool, grace, 100).await.expect("sweep");
    assert_eq!(expired.iter().map(|e| e.id).collect::<Vec<_>>(), vec![overrunning]);
    let mut conn = db.conn().await;
    assert!(!jobs::heartbeat(&mut conn, overrunning, overrunning_epoch, LEASE).await.expect("heartbeat"));
    drop(conn);
    assert_eq!(
        db.settle(overrunning, overrunning_epoch, Settlement::Commit).await.expect("s"),
        Settled::Stale
    );
    assert_eq!(db.balance(USER).await, (90, 10), "three released, one still reserved");
    let error: String = sqlx::query_scalar("SELECT error FROM generations WHERE id = $1")
        .bind(queued)
        .fetch_one(&db.pool)
        .await
        .expect("error");
    assert_eq!(error, jobs::DEADLINE_ERROR);
    db.assert_audit_clean().await;
}

/// One side of the race: (commits, releases) it made.
type Racer<'a> = Pin<Box<dyn Future<Output = (i64, i64)> + 'a>>;

#[tokio::test]
async fn live_holders_racing_the_deadline_sweep_settle_each_generation_exactly_once() {
    let db = TestDb::heavy(12).await;
    db.user_with(USER, 1000).await;
    for _ in 0..40 {
        db.request_generation(USER, 10).await.expect("request");
    }
    let held = claim(&db, "w1", 40).await;
    assert_eq!(held.len(), 40);
    db.corrupt("UPDATE generations SET deadline = now() - interval '1 minute'").await;

    // Each holder's commit next to a sweep of one job, so commits and sweeps interleave (both
    // sides win some in practice; which ones is up to the scheduler, so only the sum is checked).
    let mut racers: Vec<Racer<'_>> = Vec::new();
    let shared = &db;
    for c in &held {
        racers.push(Box::pin(async {
            let swept = jobs::expire_overdue(&shared.pool, Duration::ZERO, 1).await.expect("sweep");
            (0, swept.len() as i64)
        }));
        racers.push(Box::pin(async move {
            match shared.settle(c.id, c.epoch, Settlement::Commit).await.expect("settle") {
                Settled::Now(_) => (1, 0),
                Settled::Stale => (0, 0),
            }
        }));
    }
    let (committed, released) =
        join_all(racers).await.into_iter().fold((0, 0), |(c, r), (dc, dr)| (c + dc, r + dr));
    let rest = jobs::expire_overdue(&db.pool, Duration::ZERO, 100).await.expect("sweep").len() as i64;
    assert_eq!(committed + released + rest, 40, "each generation settled once");
    let settlements: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM transactions WHERE type IN ('commit', 'release')")
            .fetch_one(&db.pool)
            .await
            .expect("count");
    assert_eq!(settlements, 40);
    assert_eq!(db.balance(USER).await, (1000 - 10 * committed, 0));
    db.assert_audit_clean().await;
}
