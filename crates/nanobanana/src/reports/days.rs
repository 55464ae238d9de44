//! A day's figures from the tables themselves (`compute`), and the rollup of closed days
//! (`report_days`, `report_generations`, `report_latency`, owned here): stored once a day is
//! over, refreshed for the last two closed days while late generations settle, rebuilt when the
//! operator's time zone changes. Today is never stored: it is `compute`d on each read.
//! Reads every table; writes only the rollup.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgConnection, PgPool};

use super::figures::{bucket_sql, DayFigures, GenerationGroup};

/// The bounds of the day, bound as `$1` and `$2` in the queries below: computed once, so a scan
/// compares plain timestamps instead of converting zones per row.
const BOUNDS: &str = "SELECT $1::timestamptz AS lo, $2::timestamptz AS hi";

/// The first instant of `day` in zone `tz` and of the day after.
pub async fn bounds(
    conn: &mut PgConnection,
    tz: &str,
    day: NaiveDate,
) -> sqlx::Result<(DateTime<Utc>, DateTime<Utc>)> {
    sqlx::query_as("SELECT $2::date::timestamp AT TIME ZONE $1, ($2::date + 1)::timestamp AT TIME ZONE $1")
        .bind(tz)
        .bind(day)
        .fetch_one(conn)
        .await
}

/// How many closed days a pass refreshes even when stored: a generation settles within its
/// deadline (at most a day) and a payment or refund may be recorded a little after midnight.
pub const REFRESHED_DAYS: i64 = 2;

/// Today's date in zone `tz`, by Postgres' clock and zone database.
pub async fn today(conn: &mut PgConnection, tz: &str) -> sqlx::Result<NaiveDate> {
    sqlx::query_scalar("SELECT (now() AT TIME ZONE $1)::date").bind(tz).fetch_one(conn).await
}

/// Day `day`'s figures in zone `tz`, from the tables.
pub async fn compute(conn: &mut PgConnection, tz: &str, day: NaiveDate) -> sqlx::Result<DayFigures> {
    let (lo, hi) = bounds(&mut *conn, tz, day).await?;
    let (new_users, payers, rub_kopecks, stars, refund_kopecks, refund_stars): (i64, i64, i64, i64, i64, i64) =
        sqlx::query_as(&format!(
            "WITH b AS ({BOUNDS}),
             paid AS (SELECT p.user_id, p.currency, p.amount_minor FROM payments p, b
                      WHERE p.status = 'succeeded'
                        AND COALESCE(p.processed_at, p.created_at) >= b.lo
                        AND COALESCE(p.processed_at, p.created_at) < b.hi),
             refunded AS (
                 SELECT p.currency, r.amount_minor FROM refunds r JOIN payments p ON p.id = r.payment_id, b
                 WHERE r.status = 'succeeded' AND r.created_at >= b.lo AND r.created_at < b.hi
                   AND NOT EXISTS (SELECT 1 FROM external_refunds e WHERE e.refund_id = r.id)
                 UNION ALL
                 SELECT p.currency, e.amount_minor FROM external_refunds e JOIN payments p ON p.id = e.payment_id, b
                 WHERE e.created_at >= b.lo AND e.created_at < b.hi)
             SELECT (SELECT COUNT(*) FROM users u, b WHERE u.registered_at >= b.lo AND u.registered_at < b.hi),
                    (SELECT COUNT(DISTINCT user_id) FROM paid),
                    (SELECT COALESCE(SUM(amount_minor) FILTER (WHERE currency = 'RUB'), 0)::int8 FROM paid),
                    (SELECT COALESCE(SUM(amount_minor) FILTER (WHERE currency = 'XTR'), 0)::int8 FROM paid),
                    (SELECT COALESCE(SUM(amount_minor) FILTER (WHERE currency = 'RUB'), 0)::int8 FROM refunded),
                    (SELECT COALESCE(SUM(amount_minor) FILTER (WHERE currency = 'XTR'), 0)::int8 FROM refunded)"
        ))
        .bind(lo)
        .bind(hi)
        .fetch_one(&mut *conn)
        .await?;
    let generations: Vec<GenerationGroup> = sqlx::query_as(&format!(
        "WITH b AS ({BOUNDS})
         SELECT g.model, g.status, COALESCE(g.failure, CASE WHEN g.status = 'failed' THEN 'other' ELSE '' END) AS failure,
                COUNT(*) AS generations, COALESCE(SUM(g.provider_cost_micro_usd), 0)::int8 AS cost_micro_usd
         FROM generations g, b WHERE g.created_at >= b.lo AND g.created_at < b.hi
         GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    ))
    .bind(lo)
    .bind(hi)
    .fetch_all(&mut *conn)
    .await?;
    let ms = "(EXTRACT(EPOCH FROM (g.completed_at - g.created_at)) * 1000)::int8";
    let latency: Vec<(i64, i64)> = sqlx::query_as(&format!(
        "WITH b AS ({BOUNDS})
         SELECT {bucket}, COUNT(*) FROM generations g, b
         WHERE g.created_at >= b.lo AND g.created_at < b.hi AND g.status = 'succeeded' AND g.completed_at IS NOT NULL
         GROUP BY 1 ORDER BY 1",
        bucket = bucket_sql(ms)
    ))
    .bind(lo)
    .bind(hi)
    .fetch_all(&mut *conn)
    .await?;
    Ok(DayFigures {
        day,
        new_users,
        payers,
        rub_kopecks,
        stars,
        refund_kopecks,
        refund_stars,
        generations,
        latency,
    })
}

/// Computes closed day `day` and stores it in place of what was stored, in one transaction
/// under a lock per day (two replicas refreshing the same day take turns).
pub async fn store(pool: &PgPool, tz: &str, day: NaiveDate) -> sqlx::Result<DayFigures> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('report_days'), ($1::date - DATE '2000-01-01'))")
        .bind(day)
        .execute(&mut *tx)
        .await?;
    let figures = compute(&mut tx, tz, day).await?;
    sqlx::query("DELETE FROM report_days WHERE day = $1").bind(day).execute(&mut *tx).await?;
    sqlx::query(
        "INSERT INTO report_days (day, timezone, new_users, payers, rub_kopecks, stars, refund_kopecks, refund_stars)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(day)
    .bind(tz)
    .bind(figures.new_users)
    .bind(figures.payers)
    .bind(figures.rub_kopecks)
    .bind(figures.stars)
    .bind(figures.refund_kopecks)
    .bind(figures.refund_stars)
    .execute(&mut *tx)
    .await?;
    let column = |f: fn(&GenerationGroup) -> String| figures.generations.iter().map(f).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO report_generations (day, model, status, failure, generations, cost_micro_usd)
         SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::text[], $5::int8[], $6::int8[])",
    )
    .bind(day)
    .bind(column(|g| g.model.clone()))
    .bind(column(|g| g.status.clone()))
    .bind(column(|g| g.failure.clone()))
    .bind(figures.generations.iter().map(|g| g.generations).collect::<Vec<_>>())
    .bind(figures.generations.iter().map(|g| g.cost_micro_usd).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO report_latency (day, bucket_ms, generations)
         SELECT $1, * FROM UNNEST($2::int8[], $3::int8[])",
    )
    .bind(day)
    .bind(figures.latency.iter().map(|(b, _)| *b).collect::<Vec<_>>())
    .bind(figures.latency.iter().map(|(_, n)| *n).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(figures)
}

/// A stored day's own row.
#[derive(sqlx::FromRow)]
struct Row {
    day: NaiveDate,
    new_users: i64,
    payers: i64,
    rub_kopecks: i64,
    stars: i64,
    refund_kopecks: i64,
    refund_stars: i64,
}

/// Each stored day with its generation groups.
fn assemble(rows: Vec<Row>, groups: &[(NaiveDate, String, String, String, i64, i64)]) -> Vec<DayFigures> {
    rows.into_iter()
        .map(|r| DayFigures {
            day: r.day,
            new_users: r.new_users,
            payers: r.payers,
            rub_kopecks: r.rub_kopecks,
            stars: r.stars,
            refund_kopecks: r.refund_kopecks,
            refund_stars: r.refund_stars,
            generations: groups
                .iter()
                .filter(|g| g.0 == r.day)
                .map(|(_, model, status, failure, generations, cost)| GenerationGroup {
                    model: model.clone(),
                    status: status.clone(),
                    failure: failure.clone(),
                    generations: *generations,
                    cost_micro_usd: *cost,
                })
                .collect(),
            latency: Vec::new(),
        })
        .collect()
}

/// Stored days of a window: each day's figures (with an empty `latency`) and the processing
/// times of all of them as one histogram, summed by Postgres (a window reads ~200 buckets, not
/// ~200 per day).
#[derive(Debug, Clone, Default)]
pub struct Stored {
    pub days: Vec<DayFigures>,
    pub latency: Vec<(i64, i64)>,
}

/// The stored figures of days `from..=to` in zone `tz` (days stored for another zone are not
/// returned), in day order.
pub async fn load(conn: &mut PgConnection, tz: &str, from: NaiveDate, to: NaiveDate) -> sqlx::Result<Stored> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT day, new_users, payers, rub_kopecks, stars, refund_kopecks, refund_stars FROM report_days
         WHERE day BETWEEN $1 AND $2 AND timezone = $3 ORDER BY day",
    )
    .bind(from)
    .bind(to)
    .bind(tz)
    .fetch_all(&mut *conn)
    .await?;
    let groups: Vec<(NaiveDate, String, String, String, i64, i64)> = sqlx::query_as(
        "SELECT g.day, g.model, g.status, g.failure, g.generations, g.cost_micro_usd
         FROM report_generations g JOIN report_days d USING (day)
         WHERE g.day BETWEEN $1 AND $2 AND d.timezone = $3 ORDER BY 1, 2, 3, 4",
    )
    .bind(from)
    .bind(to)
    .bind(tz)
    .fetch_all(&mut *conn)
    .await?;
    let latency: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT l.bucket_ms, SUM(l.generations)::int8 FROM report_latency l JOIN report_days d USING (day)
         WHERE l.day BETWEEN $1 AND $2 AND d.timezone = $3 GROUP BY 1 ORDER BY 1",
    )
    .bind(from)
    .bind(to)
    .bind(tz)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Stored { days: assemble(rows, &groups), latency })
}

/// The closed days of `from..=to` (before `today`) that are not stored for zone `tz`.
pub async fn missing(
    conn: &mut PgConnection,
    tz: &str,
    from: NaiveDate,
    today: NaiveDate,
) -> sqlx::Result<Vec<NaiveDate>> {
    sqlx::query_scalar(
        "SELECT d::date FROM generate_series($1::date, $2::date - 1, interval '1 day') AS d
         WHERE NOT EXISTS (SELECT 1 FROM report_days r WHERE r.day = d::date AND r.timezone = $3)
         ORDER BY 1",
    )
    .bind(from)
    .bind(today)
    .bind(tz)
    .fetch_all(conn)
    .await
}

/// Stores every closed day of `from..today` that is missing (the on-demand half of the rollup).
pub async fn ensure(pool: &PgPool, tz: &str, from: NaiveDate, today: NaiveDate) -> sqlx::Result<usize> {
    let days = missing(&mut *pool.acquire().await?, tz, from, today).await?;
    for day in &days {
        store(pool, tz, *day).await?;
    }
    Ok(days.len())
}

/// One pass of the background refresher: the last `REFRESHED_DAYS` closed days again (late
/// settlements), and every missing closed day of the last `keep_days`.
pub async fn refresh(pool: &PgPool, tz: &str, keep_days: u64) -> sqlx::Result<usize> {
    let today = today(&mut *pool.acquire().await?, tz).await?;
    let mut stored = 0;
    for back in 1..=REFRESHED_DAYS {
        store(pool, tz, today - chrono::Days::new(back as u64)).await?;
        stored += 1;
    }
    stored += ensure(pool, tz, today - chrono::Days::new(keep_days), today).await?;
    Ok(stored)
}

/// Stores again every closed day of the last `days` days (the operator's "recompute", and
/// what a load test runs after seeding history under a running service).
pub async fn rebuild(pool: &PgPool, tz: &str, days: u64) -> sqlx::Result<usize> {
    let today = today(&mut *pool.acquire().await?, tz).await?;
    for back in 1..=days {
        store(pool, tz, today - chrono::Days::new(back)).await?;
    }
    Ok(days as usize)
}
