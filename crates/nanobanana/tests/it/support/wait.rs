//! The one way the tests wait: poll with a deadline, never sleep and hope.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

/// How long a test waits for anything the service should do by itself.
pub const WAIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(20);

/// Polls `probe` until it returns `Ok`; its value. After `timeout` panics with `what` and the
/// last `Err`, which says what was seen instead.
pub async fn until<T, E, F, Fut>(what: impl Display, timeout: Duration, mut probe: F) -> T
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(seen) => {
                assert!(tokio::time::Instant::now() < deadline, "{what}: not within {timeout:?}; {seen}");
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Polls the count `sql` returns until it is `want`.
pub async fn until_count(pool: &sqlx::PgPool, what: impl Display, sql: &str, want: i64) {
    until(what, WAIT, || async move {
        let have: i64 = sqlx::query_scalar(sql).fetch_one(pool).await.expect(sql);
        if have == want {
            Ok(())
        } else {
            Err(format!("{sql} is {have}, want {want}"))
        }
    })
    .await
}
