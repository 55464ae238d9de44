//! Wake-up signals through Redis (DESIGN §4 "Worker"): a notify wakes a waiting worker at once,
//! each signal is consumed once, and losing the stream (as `FLUSHALL` would) only leaves the
//! poll path, which still finds the work in Postgres. Real Redis at `REDIS_URL`, a unique key
//! prefix per test; only this test's keys are ever deleted.

use std::time::Duration;

use nanobanana::config::{RedisConfig, DEFAULT_REDIS_URL};
use nanobanana::secret::Secret;
use nanobanana::signals::{self, Notifier, Waiter, Wake};
use nanobanana::{jobs, redis as nb_redis};
use redis::AsyncTypedCommands;
use uuid::Uuid;

use super::USER;
use crate::support::TestDb;

/// Longer than anything here should take; a hang fails the test instead of blocking it.
const PATIENCE: Duration = Duration::from_secs(5);

struct TestRedis {
    config: RedisConfig,
}

impl TestRedis {
    fn new() -> Self {
        let raw = std::env::var("REDIS_URL").unwrap_or_else(|_| DEFAULT_REDIS_URL.to_owned());
        let url = url::Url::parse(&raw).expect("REDIS_URL is a URL");
        Self { config: RedisConfig { url: Secret::new(url), prefix: format!("nbt:{}:", Uuid::new_v4()) } }
    }

    async fn notifier(&self) -> Notifier {
        Notifier::new(nb_redis::connect(&self.config).await.expect("Redis"), &self.config.prefix)
    }

    async fn waiter(&self) -> Waiter {
        let conn = nb_redis::connect_blocking(&self.config).await.expect("Redis");
        let mut waiter = Waiter::new(conn, &self.config.prefix);
        // Creates the stream and the group, so what follows finds the waiter in place.
        assert_eq!(waiter.wait(Duration::from_millis(1)).await.expect("first read"), Vec::<Uuid>::new());
        waiter
    }

    /// Deletes this test's stream: what `FLUSHALL` or a Redis restart without data does to it.
    async fn lose_the_stream(&self) {
        let mut conn = nb_redis::connect(&self.config).await.expect("Redis");
        conn.del(signals::stream_key(&self.config.prefix)).await.expect("DEL");
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let key = signals::stream_key(&self.config.prefix);
        if let Ok(client) = redis::Client::open(self.config.url.expose().as_str()) {
            if let Ok(mut conn) = client.get_connection() {
                let _ = redis::TypedCommands::del(&mut conn, key);
            }
        }
    }
}

#[tokio::test]
async fn a_notify_wakes_a_waiting_worker_with_the_generation() {
    let redis = TestRedis::new();
    let mut waiter = redis.waiter().await;
    let waiting = tokio::spawn(async move { waiter.next(Duration::from_secs(10)).await });
    let id = Uuid::new_v4();
    redis.notifier().await.notify(id).await.expect("notify");
    let woke = tokio::time::timeout(PATIENCE, waiting).await.expect("woken before the poll interval");
    assert_eq!(woke.expect("waiter task"), Wake::Signalled(vec![id]));
}

#[tokio::test]
async fn each_signal_is_consumed_once() {
    let redis = TestRedis::new();
    let mut first = redis.waiter().await;
    let mut second = redis.waiter().await;
    let notifier = redis.notifier().await;
    let ids = [Uuid::new_v4(), Uuid::new_v4()];
    for id in ids {
        notifier.notify(id).await.expect("notify");
    }
    let read = tokio::time::timeout(PATIENCE, first.wait(Duration::from_secs(1))).await.expect("in time");
    assert_eq!(read.expect("read"), ids.to_vec());
    let again = second.wait(Duration::from_millis(50)).await.expect("read");
    assert!(again.is_empty(), "already consumed by the first worker: {again:?}");
    assert!(first.wait(Duration::from_millis(50)).await.expect("read").is_empty());
}

#[tokio::test]
async fn after_the_stream_is_lost_polling_still_finds_the_job_and_signals_recover() {
    let db = TestDb::new().await;
    db.user_with(USER, 100).await;
    let redis = TestRedis::new();
    let mut waiter = redis.waiter().await;
    let notifier = redis.notifier().await;
    let id = db.request_generation(USER, 10).await.expect("request");
    notifier.notify(id).await.expect("notify");
    redis.lose_the_stream().await;

    let poll_every = Duration::from_millis(200);
    let woke = tokio::time::timeout(PATIENCE, waiter.next(poll_every)).await.expect("in time");
    assert_eq!(woke, Wake::Poll, "the signal is gone; the poll interval still passes");
    let claimed = jobs::claim(&mut *db.conn().await, "w1", Duration::from_secs(30), 10).await.expect("claim");
    assert_eq!(claimed.iter().map(|c| c.id).collect::<Vec<_>>(), vec![id], "Postgres still has the job");

    let next = db.request_generation(USER, 10).await.expect("request");
    notifier.notify(next).await.expect("notify recreates the stream");
    let signalled = tokio::time::timeout(PATIENCE, async {
        loop {
            if let Wake::Signalled(ids) = waiter.next(poll_every).await {
                return ids;
            }
        }
    })
    .await
    .expect("signals work again once the group is recreated");
    assert_eq!(signalled, vec![next]);
}

#[tokio::test]
async fn a_waiter_blocked_while_the_stream_is_lost_gets_later_signals() {
    let redis = TestRedis::new();
    let mut waiter = redis.waiter().await;
    let (blocked_tx, blocked_rx) = tokio::sync::oneshot::channel();
    let waiting = tokio::spawn(async move {
        let _ = blocked_tx.send(());
        loop {
            if let Wake::Signalled(ids) = waiter.next(Duration::from_millis(200)).await {
                return ids;
            }
        }
    });
    blocked_rx.await.expect("waiter started");
    redis.lose_the_stream().await;
    let id = Uuid::new_v4();
    redis.notifier().await.notify(id).await.expect("notify");
    let ids = tokio::time::timeout(PATIENCE, waiting).await.expect("woken in time").expect("waiter task");
    assert_eq!(ids, vec![id]);
}
