//! The intake's fast path (`bot::fast`, issue #16) against the full path it stands in for: the
//! same updates leave the same rows either way, and the fast path really handles the plain ones
//! (its counter on `/metrics`). Its concurrency — one update delivered five times at once, fifty
//! prompts at once against the cap and the balance — is `bot.rs`'s, run on the fast path.

use serde_json::{json, Value};

use crate::support::{fast, TestApp, TestDb, SECRET};

fn update(update_id: i64, user: i64, text: &str) -> Vec<u8> {
    let body = json!({
        "update_id": update_id,
        "message": {
            "message_id": update_id, "date": 1_700_000_000, "text": text,
            "chat": {"id": user, "type": "private", "first_name": "T"},
            "from": {"id": user, "is_bot": false, "first_name": "T", "language_code": "en"}
        }
    });
    serde_json::to_vec(&body).expect("JSON")
}

/// Every row the updates below can write, without ids, times and what the sender changes (the
/// fake Telegram's own updates, which open the chats, carry times in their bodies).
const SNAPSHOT: &[&str] = &[
    "SELECT COALESCE(json_agg(t ORDER BY update_id), '[]') FROM (
         SELECT update_id, kind, state, step, body_md5 FROM telegram_updates
         WHERE update_id < 100000000) t",
    "SELECT COALESCE(json_agg(t ORDER BY telegram_id), '[]') FROM (
         SELECT telegram_id, username, first_name, language, settings, is_active, is_banned,
                last_seen_at IS NOT NULL AS seen, awaiting FROM users) t",
    "SELECT COALESCE(json_agg(t ORDER BY user_id), '[]') FROM (
         SELECT user_id, credits_available, credits_reserved FROM balances) t",
    "SELECT COALESCE(json_agg(t ORDER BY source_key), '[]') FROM (
         SELECT user_id, prompt, model, model_id, image_size, aspect_ratio, cost, status, source_key,
                reference_file_ids, status_outbox_id IS NOT NULL AS has_status,
                (deadline - created_at)::TEXT AS deadline FROM generations) t",
    "SELECT COALESCE(json_agg(t ORDER BY n), '[]') FROM (
         SELECT user_id, type, amount, delta_available, delta_reserved, balance_after,
                reserved_after, generation_id IS NOT NULL AS for_generation, actor, reason,
                         id AS n
         FROM transactions WHERE actor IS DISTINCT FROM 'test') t",
    "SELECT COALESCE(json_agg(t ORDER BY n), '[]') FROM (
         SELECT chat_id, method, class, status_of IS NOT NULL AS status,
                CASE WHEN status_of IS NULL THEN params END AS params, id AS n FROM outbox) t",
];

async fn snapshot(app: &TestApp) -> Vec<Value> {
    let mut rows = Vec::new();
    for sql in SNAPSHOT {
        let mut row: Value = sqlx::query_scalar(sql).fetch_one(&app.db.pool).await.expect(sql);
        // Row ids only order the rows: a rolled-back try of the fast path used up sequence values.
        for entry in row.as_array_mut().into_iter().flatten() {
            if let Some(entry) = entry.as_object_mut() {
                entry.remove("n");
            }
        }
        rows.push(row);
    }
    rows
}

async fn fast_count(app: &TestApp, metrics: &str) -> u64 {
    let text = app.http.get(metrics).send().await.expect("metrics").text().await.expect("text");
    text.lines()
        .find_map(|line| line.strip_prefix("nanobanana_updates_fast_total "))
        .and_then(|n| n.trim().parse().ok())
        .expect("nanobanana_updates_fast_total")
}

#[tokio::test]
async fn the_fast_path_leaves_exactly_the_rows_of_the_full_path_and_takes_the_plain_updates() {
    let mut states = Vec::new();
    for on in ["true", "false"] {
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let app = TestApp::builder()
            .env("INTAKE_FAST_PATH", on)
            .env("MAX_IN_FLIGHT", "2")
            .env("METRICS_ADDR", &format!("127.0.0.1:{port}"))
            .start()
            .await;
        let metrics = format!("http://127.0.0.1:{port}/metrics");
        // Their chats opened (a new user's /start: the full path), then funded.
        app.funded(901, 25).await;
        app.funded(902, 5).await;
        // Plain: /start, /help, two prompts. Not plain, each for its own
        // reason: a third prompt
        // over the in-flight cap, a prompt on a short balance, an empty-looking prompt, a deep
        // link, an unknown command, and a redelivery.
        let updates: &[(i64, i64, &str)] = &[
            (9_000_001, 901, "/start"),
            (9_000_002, 901, "/help"),
            (9_000_003, 901, "a cat"),
            (9_000_004, 901, "a dog on a skateboard"),
            (9_000_005, 901, "a bird"),
            (9_000_006, 902, "a fish"),
            (9_000_007, 902, "   "),
            (9_000_008, 902, "/start from_a_channel"),
            (9_000_009, 902, "/nosuchcommand"),
            (9_000_003, 901, "a cat"),
            (9_000_010, 902, "/help"),
        ];
        for (id, user, text) in updates {
            assert!(app.post(Some(SECRET), update(*id, *user, text)).await.is_success(), "update {id}");
        }
        // A settings button (plain) under the settings screen (not plain: /settings reads more).
        app.command(901, "en", "settings");
        let has_2k = |m: &fakes::telegram::BotMessage| m.callback_data().iter().any(|d| d == "st:s:2K");
        let screen = app.wait_message(901, "the settings screen", has_2k).await;
        let toast = app.press(901, screen.message_id, "st:s:2K").await;
        assert!(!toast.is_empty(), "the button's toast");
        app.chat(901, |c| c.messages.iter().any(|m| !m.edits.is_empty())).await;
        // What the fast path remembers of a user goes stale when their settings change: their
        // next prompt is refused by the function, forgotten, and priced by the full path.
        app.funded(904, 100).await;
        assert!(app.post(Some(SECRET), update(9_000_020, 904, "a first picture")).await.is_success());
        app.command(904, "en", "settings");
        let has_4k = |m: &fakes::telegram::BotMessage| m.callback_data().iter().any(|d| d == "st:s:4K");
        let screen = app.wait_message(904, "the settings screen", has_4k).await;
        app.press(904, screen.message_id, "st:s:4K").await;
        assert!(app.post(Some(SECRET), update(9_000_021, 904, "a second picture")).await.is_success());
        let sizes: Vec<String> =
            sqlx::query_scalar("SELECT image_size FROM generations WHERE user_id = 904 ORDER BY source_key")
                .fetch_all(&app.db.pool)
                .await
                .expect("sizes");
        assert_eq!(sizes, ["1K", "4K"]);
        let handled = fast_count(&app, &metrics).await;
        assert_eq!(handled, if on == "true" { 8 } else { 0 }, "fast path on: {on}");
        states.push(snapshot(&app).await);
        // The welcome (after the first one of opening the chat) shows the balance.
        let chat = app.messages(901, 2).await;
        assert!(chat.messages[1].text().unwrap_or("").contains("25"), "{chat:?}");
        assert_eq!(app.db.balance(901).await, (5, 20));
        app.db.assert_audit_clean().await;
        app.run_worker(fast()).await;
        app.finish().await;
    }
    for (table, (fast, full)) in SNAPSHOT.iter().zip(states[0].iter().zip(&states[1])) {
        assert_eq!(fast, full, "fast path, then full path: {table}");
    }
}

/// `users_touch` (every update runs it): a sender seen this minute with nothing changed is
/// locked as before and read, not rewritten; a new name, a new minute, a return after blocking
/// the bot each write.
#[tokio::test]
async fn a_sender_seen_this_minute_is_locked_and_read_not_rewritten() {
    use nanobanana::db::users::{self, NewUser};

    let db = TestDb::new().await;
    let user = NewUser { telegram_id: 4242, username: Some("ann"), first_name: Some("Ann") };
    let version = || async {
        let row: (String, bool, String) =
            sqlx::query_as("SELECT xmin::TEXT, is_active, first_name FROM users WHERE telegram_id = 4242")
                .fetch_one(&db.pool)
                .await
                .expect("the user's row");
        row
    };
    let touch = |user: NewUser<'static>| {
        let pool = db.pool.clone();
        async move { users::touch(&mut *pool.acquire().await.expect("conn"), &user, "en").await.expect("touch") }
    };
    assert!(touch(user.clone()).await.created, "first contact creates the user");
    let (first, _, _) = version().await;
    let again = touch(user.clone()).await;
    assert!(!again.created && again.language == "en" && !again.is_banned);
    assert_eq!(version().await.0, first, "seen this minute, nothing changed: no new row version");

    // The read still locks the row as the update did, for the rest of the transaction.
    let mut tx = db.pool.begin().await.expect("begin");
    users::touch(&mut tx, &user, "en").await.expect("touch in a transaction");
    let locked = sqlx::query("SELECT 1 FROM users WHERE telegram_id = 4242 FOR NO KEY UPDATE NOWAIT")
        .execute(&db.pool)
        .await
        .expect_err("the row is locked by the touching transaction");
    assert!(locked.to_string().contains("could not obtain lock"), "{locked}");
    tx.rollback().await.expect("rollback");

    let renamed = NewUser { first_name: Some("Anna"), ..user.clone() };
    touch(renamed.clone()).await;
    let (second, _, name) = version().await;
    assert!(second != first && name == "Anna", "a new first name is written");

    sqlx::query("UPDATE users SET last_seen_at = date_trunc('minute', now()) - interval '1 second', is_active = FALSE WHERE telegram_id = 4242")
        .execute(&db.pool)
        .await
        .expect("seen last minute, then blocked the bot");
    touch(renamed).await;
    let fresh: bool = sqlx::query_scalar(
        "SELECT last_seen_at >= date_trunc('minute', now()) AND is_active FROM users WHERE telegram_id = 4242",
    )
    .fetch_one(&db.pool)
    .await
    .expect("seen");
    assert!(fresh, "a new minute writes last_seen_at, and a returning user is active again");
}

/// The caps count what they name — generations in flight (from any day) and generations
/// created today — without reading the user's whole history, in the full path
/// (`jobs::new::load_of`) and in the fast path's `intake_prompt` alike. (The history is written
/// raw, without its journal: this test reads counts and leaves the audit to the others.)
#[tokio::test]
async fn the_caps_count_in_flight_and_today_from_any_history() {
    let db = TestDb::new().await;
    db.user_with(4343, 1_000).await;
    // Yesterday: three succeeded and one still queued; today: two succeeded and one processing.
    for (status, day, n) in
        [("succeeded", -1, 3), ("queued", -1, 1), ("succeeded", 0, 2), ("processing", 0, 1)]
    {
        sqlx::query(
            "INSERT INTO generations (user_id, prompt, model, cost, source_key, status, created_at)
             SELECT 4343, 'p', 'nb21', 1, $1 || '-' || $2 || '-' || g, $1,
                    date_trunc('day', now()) + make_interval(days => $2) + make_interval(secs => g)
             FROM generate_series(1, $3) g",
        )
        .bind(status)
        .bind(day)
        .bind(n)
        .execute(&db.pool)
        .await
        .expect("history");
    }
    let load = nanobanana::jobs::new::load_of(&mut *db.conn().await, 4343, "gemini-x").await.expect("load");
    assert_eq!((load.in_flight, load.today), (2, 3), "in flight from any day; created today only");

    // The same counts in the fast path's function: refused (NB001) exactly at each cap.
    let prompt = |max_in_flight: i64, daily: i64, update: i64| {
        let pool = db.pool.clone();
        async move {
            sqlx::query_scalar::<_, String>(
                "SELECT intake_prompt($1, 'message', '{}'::jsonb, 4343, 'tester', 'Test', 'ru', '{}'::jsonb,
                        4343, gen_random_uuid(), 'p', 'nb21', NULL, NULL, '1:1', 1, NULL, $1::TEXT,
                        $2, $3, 'generation_pause')",
            )
            .bind(update)
            .bind(max_in_flight)
            .bind(daily)
            .fetch_one(&pool)
            .await
        }
    };
    let refused = |r: Result<String, sqlx::Error>| matches!(r, Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("NB001"));
    assert!(refused(prompt(2, 100, 1).await), "two in flight reach a cap of two");
    assert!(refused(prompt(3, 3, 2).await), "three today reach a daily cap of three");
    assert_eq!(prompt(3, 4, 3).await.expect("under both caps"), "queued");
}
