//! `/healthz`: the process answers. `/readyz`: Postgres and Redis answer too, and the process
//! is not shutting down.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;

use super::AppState;

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn readyz(State(state): State<AppState>) -> (StatusCode, String) {
    if *state.draining.borrow() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down".to_owned());
    }
    let limit = Duration::from_secs(2);
    let postgres = tokio::time::timeout(limit, sqlx::query("SELECT 1").execute(&state.bot.pool)).await;
    let postgres_ok = matches!(postgres, Ok(Ok(_)));
    let redis_ok = matches!(tokio::time::timeout(limit, ping(&state.redis)).await, Ok(Ok(())));
    let status = if postgres_ok && redis_ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let word = |ok: bool| if ok { "ok" } else { "unreachable" };
    (status, format!("postgres {}, redis {}", word(postgres_ok), word(redis_ok)))
}

async fn ping(conn: &::redis::aio::ConnectionManager) -> ::redis::RedisResult<()> {
    let mut conn = conn.clone();
    ::redis::cmd("PING").query_async::<String>(&mut conn).await.map(|_| ())
}
