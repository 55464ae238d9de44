//! The acceptance test of DESIGN §1 as a whole, short version (`loadgen scenario` runs the long
//! one with the same driver, `loadgen::scenario`): two `serve` processes behind a balancer and
//! two `worker` processes, real Postgres and Redis, the three fakes; simulated users acting at
//! random while processes are killed with SIGKILL, Redis loses every key, leases expire under
//! live workers and every external API misbehaves. Then drained, stopped with SIGTERM, and
//! every guarantee checked (see `loadgen::scenario::check`).

use std::time::Duration;

use loadgen::scenario::{self, ChaosOptions, Options, Setup};

use crate::support::{Leave, TestDb};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_users_under_chaos_lose_nothing_and_pay_once() {
    // Four processes with their own pools: alone among the heavy tests.
    let db = TestDb::heavy(5).await;
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_secs());
    let workdir = std::env::temp_dir().join(format!("nbtest-scenario-{}", uuid::Uuid::new_v4().simple()));
    let setup = Setup {
        binary: crate::support::process::binary().to_owned(),
        database_url: db.url.clone(),
        redis_url: std::env::var("REDIS_URL")
            .unwrap_or_else(|_| nanobanana::config::DEFAULT_REDIS_URL.to_owned()),
        serves: 2,
        workers: 2,
        grace_secs: 10,
        gemini_latency: Duration::from_millis(150),
        workdir: workdir.clone(),
    };
    let options = Options {
        setup,
        users: 40,
        duration: Duration::from_secs(25),
        step_every: Duration::from_millis(40),
        chaos: Some(ChaosOptions {
            every_ms: (600, 1600),
            kill_workers: true,
            kill_serves: true,
            drop_notifications: false,
            daily_quota: false,
            each_kind_first: true,
        }),
        seed,
        // A refund whose YooKassa call failed waits for the reconciler (60 s + 30 s).
        drain: Duration::from_secs(100),
        persistent_retries: false,
        each_flow_first: true,
        act_until_flows_shown: true,
    };
    let report = scenario::run(options).await.expect("the scenario runs");
    eprintln!("{report}");
    assert!(report.passed(), "seed {seed}:\n{report}");
    let counts = &report.counts;
    assert!(counts.generations_succeeded > 0 && counts.generations_failed > 0, "{report}");
    assert!(counts.payments_succeeded > 0, "{report}");
    // Every kind of purchase and refund happened, so an action that silently stops working
    // (a button renamed, a flow the driver no longer finds) fails here.
    let flow = |name: &str| report.flows.get(name).copied().unwrap_or(0);
    for name in loadgen::scenario::users::REQUIRED_FLOWS {
        assert!(flow(name) > 0, "no {name}: {report}");
    }
    assert!(counts.stars_charges > 0 && counts.stars_second_charges > 0, "{report}");
    assert!(counts.refunds_committed > 0, "{report}");
    assert!(report.process_kills >= 2, "the chaos killed no worker or no serve: {report}");
    // The end of every end-to-end test; the chaos's blocked users and Telegram's refusals
    // leave messages dropped, which the scenario's own checks account for.
    db.assert_settled(Leave { dropped_outbox: true, ..Leave::default() }).await;
    let _ = std::fs::remove_dir_all(&workdir);
}
