//! Graceful shutdown under load, on the real binary: SIGTERM to `serve` and `worker` (and to
//! `run`) while updates are being handled and generations are at Gemini. Every process exits 0
//! within its grace period; a webhook request in flight is finished and answered (not cut
//! off); every in-flight generation is handed back (none is left `processing` with a lease);
//! after a restart everything drains and every guarantee holds.

use std::collections::BTreeSet;
use std::time::Duration;

use fakes::telegram::users;
use loadgen::scenario::{check, Role, Setup, System};

use crate::support::{profile, wait, Leave, TestDb, WAIT};

const GRACE_SECS: u64 = 8;
const FIRST: i64 = 8_100_000;
const USERS: i64 = 24;

fn setup(db: &TestDb, serves: usize, workers: usize) -> Setup {
    Setup {
        binary: crate::support::process::binary().to_owned(),
        database_url: db.url.clone(),
        redis_url: std::env::var("REDIS_URL")
            .unwrap_or_else(|_| nanobanana::config::DEFAULT_REDIS_URL.to_owned()),
        serves,
        workers,
        grace_secs: GRACE_SECS,
        // Long enough that SIGTERM finds generations at Gemini.
        gemini_latency: Duration::from_millis(2_500),
        workdir: std::env::temp_dir().join(format!("nbtest-shutdown-{}", uuid::Uuid::new_v4().simple())),
    }
}

async fn until(system: &System, what: &str, sql: &str, at_least: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while system.count(sql).await.expect("count") < at_least {
        if tokio::time::Instant::now() > deadline {
            let state: Vec<(String, i64)> = sqlx::query_as(
                "SELECT 'generations ' || status, COUNT(*) FROM generations GROUP BY status
                 UNION ALL SELECT 'updates ' || state, COUNT(*) FROM telegram_updates GROUP BY state",
            )
            .fetch_all(&system.pool)
            .await
            .expect("state");
            let pending = system.tg.pending_updates().len();
            panic!("{what} never happened; {state:?}, {pending} updates pending:\n{}", system.logs());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn fund(db: &TestDb) {
    for n in 0..USERS {
        db.user_with(FIRST + n, 100).await;
    }
}

/// Funded users each send /start and two prompts; the update ids.
async fn load(system: &System) -> BTreeSet<i64> {
    let mut updates = BTreeSet::new();
    let profile = profile("en");
    for n in 0..USERS {
        let state = system.tg.state();
        updates.insert(users::command(state, FIRST + n, &profile, "start", None).expect("start").update_id);
        for p in 0..2 {
            let sent = users::text(state, FIRST + n, &profile, &format!("a cat {n}/{p}")).expect("prompt");
            updates.insert(sent.update_id);
        }
    }
    updates
}

/// `nanobanana health [args]` (the containers' healthcheck) on this system: whether it says healthy.
async fn healthy(system: &System, args: &[&str]) -> bool {
    tokio::process::Command::new(&system.setup.binary)
        .arg("health")
        .args(args)
        .env("DATABASE_URL", system.setup.database_url.as_str())
        .env("REDIS_URL", &system.setup.redis_url)
        .stdout(std::process::Stdio::null())
        .status()
        .await
        .expect("nanobanana health runs")
        .success()
}

/// SIGTERM to everything at once: each exits 0 within the grace period.
async fn terminate(system: &System) {
    let exits = system.terminate_all(Duration::from_secs(GRACE_SECS + 10)).await;
    assert!(!exits.is_empty());
    for (role, status, took) in exits {
        let status = status.unwrap_or_else(|| panic!("{role:?} ignored SIGTERM:\n{}", system.logs()));
        assert!(status.success(), "{role:?} exited {status:?}:\n{}", system.logs());
        assert!(took < Duration::from_secs(GRACE_SECS + 2), "{role:?} took {took:?}");
    }
}

/// Started again: everything drains and every guarantee holds.
async fn restart_and_check(db: &TestDb, system: &System, updates: &BTreeSet<i64>) {
    system.restart_all().await.expect("restart");
    if let Err(left) = check::drain(system, Duration::from_secs(60)).await.expect("drain") {
        panic!("not drained: {left}\n{}", system.logs());
    }
    let (counts, problems) = check::check(system, updates, &BTreeSet::new()).await.expect("check");
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(counts.generations_succeeded, USERS * 2, "{counts:?}");
    assert_eq!(counts.photos_in_chats, USERS * 2);
    terminate(system).await;
    db.assert_settled(Leave::default()).await;
    system.close();
    let _ = std::fs::remove_dir_all(system.workdir());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_serve_and_workers_on_sigterm_finish_in_flight_work_and_lose_nothing() {
    let db = TestDb::heavy(5).await;
    let system = System::start(setup(&db, 1, 2)).await.expect("system");
    // A few users' balance rows locked by the test: their prompts stop inside serve's
    // transactions, so SIGTERM lands while those webhook requests are in flight.
    fund(&db).await;
    let mut blocker = db.pool.begin().await.expect("begin");
    sqlx::query("SELECT 1 FROM balances WHERE user_id >= $1 AND user_id < $2 FOR UPDATE")
        .bind(FIRST + USERS - 3)
        .bind(FIRST + USERS)
        .execute(&mut *blocker)
        .await
        .expect("lock three balances");
    let updates = load(&system).await;
    let waiting =
        "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()";
    until(&system, "a webhook request waiting on the lock", waiting, 1).await;
    until(
        &system,
        "generations at Gemini",
        "SELECT COUNT(*) FROM generations WHERE status = 'processing'",
        4,
    )
    .await;
    let port = system.procs.lock().await.iter().find_map(|p| p.port).expect("serve's port");
    let readyz = format!("http://127.0.0.1:{port}/readyz");
    assert!(healthy(&system, &["--url", &readyz]).await, "serve is ready");
    assert!(healthy(&system, &["--deps"]).await, "PostgreSQL and Redis answer");
    let handled_before =
        system.count("SELECT COUNT(*) FROM telegram_updates WHERE state = 'handled'").await.expect("n");
    let terminating = tokio::spawn({
        let system = system.clone();
        async move { terminate(&system).await }
    });
    // Once serve has taken the SIGTERM (it no longer answers ready), the request in flight
    // finishes within the grace period when its lock is free.
    wait::until("serve took the SIGTERM", WAIT, || async {
        if healthy(&system, &["--url", &readyz]).await {
            Err("still ready")
        } else {
            Ok(())
        }
    })
    .await;
    blocker.rollback().await.expect("unlock");
    terminating.await.expect("every process exited 0 in time");
    assert!(!healthy(&system, &["--url", &readyz]).await, "a stopped serve is not healthy");

    assert_eq!(
        system.count("SELECT COUNT(*) FROM generations WHERE status = 'processing'").await.expect("n"),
        0,
        "every in-flight generation was handed back"
    );
    let handed_back_attempts = system
        .count("SELECT COUNT(*) FROM generations WHERE status = 'queued' AND attempts > 0")
        .await
        .expect("n");
    assert_eq!(handed_back_attempts, 0, "a handed-back attempt is not counted");
    let handled_after =
        system.count("SELECT COUNT(*) FROM telegram_updates WHERE state = 'handled'").await.expect("n");
    assert!(handled_after > handled_before, "the request in flight at SIGTERM was finished, not dropped");
    let answered_in_flight = system
        .tg
        .deliveries()
        .iter()
        .filter(|d| d.status == Some(200))
        .map(|d| d.update_id)
        .collect::<BTreeSet<_>>()
        .len() as i64;
    assert_eq!(answered_in_flight, handled_after, "every handled update was answered 200");
    restart_and_check(&db, &system, &updates).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_run_on_sigterm_hands_back_and_loses_nothing() {
    let db = TestDb::heavy(5).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let system = System::start_with(setup(&db, 0, 0), vec![(Role::Run, Some(port))]).await.expect("system");
    fund(&db).await;
    let updates = load(&system).await;
    until(
        &system,
        "generations at Gemini",
        "SELECT COUNT(*) FROM generations WHERE status = 'processing'",
        4,
    )
    .await;
    terminate(&system).await;
    assert_eq!(
        system.count("SELECT COUNT(*) FROM generations WHERE status = 'processing'").await.expect("n"),
        0,
        "every in-flight generation was handed back"
    );
    restart_and_check(&db, &system, &updates).await;
}
