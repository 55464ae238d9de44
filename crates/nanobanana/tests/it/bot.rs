//! The bot service over real HTTP: the fake Telegram delivers updates to `serve`'s webhook,
//! and the tests assert on what the fake received, on the ledger and on the audit.

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::support::{fast, wait, Leave, TestApp, SECRET};

fn message_update(update_id: i64, user: i64, text: &str) -> Value {
    json!({
        "update_id": update_id,
        "message": {
            "message_id": update_id, "date": 1_700_000_000, "text": text,
            "chat": {"id": user, "type": "private", "first_name": "T"},
            "from": {"id": user, "is_bot": false, "first_name": "T", "language_code": "en"}
        }
    })
}

#[tokio::test]
async fn start_and_help_answer_in_the_users_language() {
    let bot = TestApp::builder().start().await;
    bot.command(501, "ru", "start");
    bot.command(502, "en", "start");
    let ru = bot.messages(501, 1).await;
    let en = bot.messages(502, 1).await;
    let (ru, en) = (ru.messages[0].text().unwrap_or(""), en.messages[0].text().unwrap_or(""));
    assert!(ru.contains("Баланс: 0 кредитов") && ru.contains("Nano Banana 2.1 1K — 10 кр."), "{ru}");
    assert!(en.contains("Balance: 0 credits") && en.contains("Nano Banana 2.1 1K: 10 cr."), "{en}");
    bot.command(502, "en", "help");
    bot.command(502, "en", "nosuchcommand");
    let chat = bot.messages(502, 3).await;
    assert!(chat.messages[1].text().unwrap_or("").contains("How it works"));
    assert!(chat.messages[2].text().unwrap_or("").contains("I don't know that command"));
    bot.finish().await;
}

#[tokio::test]
async fn a_prompt_reserves_its_price_and_a_short_balance_reserves_nothing() {
    let bot = TestApp::builder().start().await;
    bot.db.user_with(601, 15).await;
    // A user who existed before keeps their language (Russian, the default).
    bot.text(601, "en", "a banana <b>on</b> the moon");
    let chat = bot.messages(601, 1).await;
    let text = chat.messages[0].text().unwrap_or("");
    assert!(text.contains("Запрос принят: a banana <b>on</b> the moon"), "escaped, shown as typed: {text}");
    assert_eq!(bot.db.balance(601).await, (5, 10));
    // The workers were woken for it.
    let id: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM generations").fetch_one(&bot.db.pool).await.expect("id");
    let conn = nanobanana::redis::connect_blocking(&bot.config.redis).await.expect("redis");
    let mut waiter = nanobanana::signals::Waiter::new(conn, &bot.config.redis.prefix);
    let woken = waiter.wait(Duration::from_secs(5)).await.expect("signal");
    assert_eq!(woken, vec![id]);
    bot.text(601, "en", "another one");
    let chat = bot.messages(601, 2).await;
    let text = chat.messages[1].text().unwrap_or("");
    assert!(text.contains("Не хватает кредитов: нужно 10, на балансе 5"), "{text}");
    let buttons = chat.messages[1].callback_data();
    assert!(
        !buttons.is_empty() && buttons.iter().all(|b| b.starts_with("buy:")),
        "the packs to buy: {buttons:?}"
    );
    assert_eq!(bot.db.balance(601).await, (5, 10));
    assert_eq!(bot.count("SELECT COUNT(*) FROM generations").await, 1);
    bot.db.assert_audit_clean().await;
    // The queued generation is made, so the test ends with nothing in flight.
    bot.run_worker(fast()).await;
    bot.finish().await;
}

#[tokio::test]
async fn the_same_update_delivered_five_times_at_once_has_one_effect() {
    let bot = TestApp::builder().start().await;
    bot.db.user_with(701, 100).await;
    bot.command(701, "en", "help");
    bot.messages(701, 1).await;
    let body = serde_json::to_vec(&message_update(9_000_001, 701, "one cat")).expect("JSON");
    let statuses = join_all((0..5).map(|_| bot.post(Some(SECRET), body.clone()))).await;
    assert!(statuses.iter().all(|s| s.is_success()), "{statuses:?}");
    for _ in 0..5 {
        assert!(bot.post(Some(SECRET), body.clone()).await.is_success());
    }
    bot.drained().await;
    let chat = bot.messages(701, 2).await;
    assert_eq!(chat.messages.len(), 2, "/help and one reply: {chat:?}");
    assert_eq!(bot.count("SELECT COUNT(*) FROM generations").await, 1);
    assert_eq!(bot.db.balance(701).await, (90, 10));
    bot.db.assert_audit_clean().await;
    // The queued generation is made, so the test ends with nothing in flight.
    bot.run_worker(fast()).await;
    bot.finish().await;
}

#[tokio::test]
async fn fifty_prompts_at_once_reserve_only_what_the_balance_and_the_cap_allow() {
    for (cap, expected) in [("5", 3), ("2", 2)] {
        // 50 messages at once from one user: the reply budget (item 7) is not what this tests.
        let bot =
            TestApp::builder().env("MAX_IN_FLIGHT", cap).env("REPLY_BUDGET_PER_MINUTE", "0").start().await;
        bot.db.user_with(801, 30).await;
        let bodies: Vec<Vec<u8>> = (0..50)
            .map(|i| {
                serde_json::to_vec(&message_update(9_100_000 + i, 801, &format!("prompt {i}"))).expect("JSON")
            })
            .collect();
        let statuses = join_all(bodies.into_iter().map(|b| bot.post(Some(SECRET), b))).await;
        assert!(statuses.iter().all(|s| s.is_success()), "{statuses:?}");
        assert_eq!(bot.count("SELECT COUNT(*) FROM generations").await, expected, "cap {cap}");
        let reserved = 10 * expected;
        assert_eq!(bot.db.balance(801).await, (30 - reserved, reserved));
        // Every prompt is answered (sending 50 messages to one chat takes ~50 s at Telegram's
        // pace, so the answers are read from the outbox): an accepted one by its status message
        // (rendered when sent), a refused one by a text.
        let answers: Vec<(Option<String>, Option<uuid::Uuid>)> =
            sqlx::query_as("SELECT params->>'text', status_of FROM outbox WHERE chat_id = 801")
                .fetch_all(&bot.db.pool)
                .await
                .expect("outbox");
        assert_eq!(answers.len(), 50);
        let accepted = answers.iter().filter(|(_, status)| status.is_some()).count();
        let refused = answers
            .iter()
            .filter_map(|(text, _)| text.as_deref())
            .filter(|t| t.contains("Не хватает") || t.contains("в работе"))
            .count();
        assert_eq!((accepted as i64, refused as i64), (expected, 50 - expected), "{answers:?}");
        bot.db.assert_audit_clean().await;
        // Its own end: the 50 answers to one chat take ~50 s at Telegram's pace (and no chat
        // is open for them, so they are dropped), and the generations are not made here.
        let leave = Leave { generations: true, pending_outbox: true, dropped_outbox: true };
        bot.finish_leaving(leave).await;
    }
}

#[tokio::test]
async fn bad_requests_are_refused_and_change_nothing() {
    let bot = TestApp::builder().start().await;
    let update = serde_json::to_vec(&message_update(9_200_001, 901, "hi")).expect("JSON");
    assert_eq!(bot.post(None, update.clone()).await, 401);
    assert_eq!(bot.post(Some("wrong-secret"), update.clone()).await, 401);
    assert_eq!(bot.post(Some(SECRET), b"{not json".to_vec()).await, 400);
    assert_eq!(bot.post(Some(SECRET), b"{\"no\": \"update_id\"}".to_vec()).await, 400);
    assert_eq!(bot.post(Some(SECRET), vec![b' '; 2 * 1024 * 1024]).await, 413);
    assert_eq!(bot.count("SELECT COUNT(*) FROM telegram_updates").await, 0);
    let unknown = json!({"update_id": 9_200_002, "poll_answer": {"poll_id": "1", "option_ids": []}});
    assert_eq!(bot.post(Some(SECRET), serde_json::to_vec(&unknown).expect("JSON")).await, 200);
    assert_eq!(bot.count("SELECT COUNT(*) FROM telegram_updates WHERE state = 'handled'").await, 1);
    assert_eq!(bot.count("SELECT COUNT(*) FROM outbox").await, 0);
    assert_eq!(bot.count("SELECT COUNT(*) FROM users").await, 0);
    let health = bot.http.get(format!("{}/readyz", bot.url)).send().await.expect("readyz");
    assert_eq!(health.status(), 200, "{:?}", health.text().await);
    // Metrics show revenue: not on the public listener without METRICS_TOKEN.
    let metrics = bot.http.get(format!("{}/metrics", bot.url)).send().await.expect("metrics");
    assert_eq!(metrics.status(), 404);
    bot.finish().await;
}

const METRICS_TOKEN: &str = "metrics-token-0123456789abcdefghijklmnop";

/// The figures every scrape must show.
fn assert_figures(metrics: &str) {
    for line in [
        "\nnanobanana_outbox_pending ",
        "\nnanobanana_queue_depth 0",
        "# TYPE nanobanana_updates_handled_total counter",
        "\nnanobanana_credits_sold_total 0",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
}

/// How many times the database figures were read, as the scrape reports it.
fn figures_read(metrics: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("nanobanana_metrics_figures_read_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no figures_read counter in {metrics}"))
}

#[tokio::test]
async fn metrics_need_the_token_and_fifty_scrapes_share_one_read_while_the_webhook_answers() {
    let bot = TestApp::builder().env("METRICS_TOKEN", METRICS_TOKEN).start().await;
    let url = format!("{}/metrics", bot.url);
    assert_eq!(bot.http.get(&url).send().await.expect("metrics").status(), 401);
    let wrong = bot.http.get(&url).bearer_auth("metrics-token-wrong").send().await.expect("metrics");
    assert_eq!(wrong.status(), 401);

    // 50 scrapers and 50 readiness probes at once, and a user's message in the middle of them.
    let scrape = || async {
        let answer = bot.http.get(&url).bearer_auth(METRICS_TOKEN).send().await.expect("metrics");
        assert_eq!(answer.status(), 200);
        answer.text().await.expect("text")
    };
    let ready = || async {
        let answer = bot.http.get(format!("{}/readyz", bot.url)).send().await.expect("readyz");
        answer.status().as_u16()
    };
    bot.tg
        .state()
        .lock()
        .ensure_user(fakes::telegram::users::user_object(931, &crate::support::profile("en")));
    let update = serde_json::to_vec(&message_update(9_300_001, 931, "/help")).expect("JSON");
    let (scrapes, probes, webhook) = tokio::join!(
        join_all((0..50).map(|_| scrape())),
        join_all((0..50).map(|_| ready())),
        bot.post(Some(SECRET), update),
    );
    assert_eq!(webhook, 200, "the webhook is answered during the scrapes");
    assert!(probes.iter().all(|status| *status == 200), "{probes:?}");
    for metrics in &scrapes {
        assert_figures(metrics);
    }
    // The figures are cached: fifty scrapes read the database once (twice if the cache
    // expired in between), not fifty times.
    let reads = scrapes.iter().map(|m| figures_read(m)).max().unwrap_or(0);
    assert!((1..=2).contains(&reads), "{reads} reads for 50 scrapes");
    bot.messages(931, 1).await;

    // The live figures follow within seconds; the business totals (each a whole-table scan)
    // are kept for minutes: a generation queued now shows in the queue depth, not yet among
    // the generations by status.
    bot.db.user_with(932, 100).await;
    let queued = bot.db.request_generation(932, 10).await.expect("a queued generation");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let later = loop {
        let metrics = scrape().await;
        if metrics.contains("\nnanobanana_queue_depth 1\n") {
            break metrics;
        }
        assert!(std::time::Instant::now() < deadline, "the queue depth never counted it: {metrics}");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    assert!(!later.contains("nanobanana_generations{status=\"queued\""), "totals not read again: {later}");
    let cancelled = nanobanana::ledger::cancel(&mut *bot.db.conn().await, queued, 932).await.expect("cancel");
    assert!(matches!(cancelled, nanobanana::ledger::Settled::Now(_)));
    bot.finish().await;
}

#[tokio::test]
async fn metrics_addr_serves_them_privately_without_a_token() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let bot = TestApp::builder().env("METRICS_ADDR", &format!("127.0.0.1:{port}")).start().await;
    let private = bot.http.get(format!("http://127.0.0.1:{port}/metrics")).send().await.expect("metrics");
    assert_eq!(private.status(), 200);
    assert_figures(&private.text().await.expect("text"));
    let public = bot.http.get(format!("{}/metrics", bot.url)).send().await.expect("metrics");
    assert_eq!(public.status(), 404);
    bot.finish().await;
}

#[tokio::test]
async fn a_user_who_blocks_the_bot_becomes_inactive_and_gets_nothing_more() {
    let bot = TestApp::builder().start().await;
    bot.command(1001, "en", "start");
    bot.messages(1001, 1).await;
    bot.tg.block(1001).expect("block");
    bot.until("marked inactive", "SELECT COUNT(*) FROM users WHERE telegram_id = 1001 AND NOT is_active", 1)
        .await;
    // A message queued for them now is refused by Telegram (403) and dropped.
    let mut conn = bot.db.conn().await;
    nanobanana::outbox::send_text(&mut conn, 1001, "late news", None).await.expect("enqueue");
    drop(conn);
    bot.until(
        "the blocked user's message dropped",
        "SELECT COUNT(*) FROM outbox WHERE state = 'dropped' AND last_error = 'bot blocked'",
        1,
    )
    .await;
    assert_eq!(bot.tg.chat(1001).map(|c| c.messages.len()), Some(1));
    // Its own end: the message to the user who blocked the bot is dropped, as asserted above.
    bot.finish_leaving(Leave { dropped_outbox: true, ..Leave::default() }).await;
}

#[tokio::test]
async fn the_sender_keeps_telegrams_pace_and_each_chats_order() {
    let bot = TestApp::builder().start().await;
    let chats: Vec<i64> = (2000..2050).collect();
    for chat in &chats {
        bot.command(*chat, "en", "help");
    }
    for chat in &chats {
        bot.messages(*chat, 1).await;
    }
    bot.tg.set_strict_pace(true);
    let mut conn = bot.db.conn().await;
    for round in 0..4 {
        for chat in &chats {
            nanobanana::outbox::send_text(&mut conn, *chat, &format!("news {round}"), None)
                .await
                .expect("enqueue");
        }
    }
    drop(conn);
    bot.tg.set_strict_pace(true);
    wait::until("200 messages sent", Duration::from_secs(40), || async {
        match bot.count("SELECT COUNT(*) FROM outbox WHERE state = 'pending'").await {
            0 => Ok(()),
            pending => Err(format!("{pending} pending")),
        }
    })
    .await;
    let retried = bot.count("SELECT COUNT(*) FROM outbox WHERE attempts > 0 OR state <> 'sent'").await;
    assert_eq!(retried, 0, "no 429, nothing dropped");
    for chat in &chats {
        let record = bot.tg.chat(*chat).expect("chat");
        let texts: Vec<&str> = record.messages.iter().skip(1).map(|m| m.text().unwrap_or("")).collect();
        assert_eq!(texts, ["news 0", "news 1", "news 2", "news 3"], "chat {chat} in order");
    }
    bot.finish().await;
}

#[tokio::test]
async fn a_429_or_a_500_is_waited_out_and_the_message_still_arrives_once() {
    let bot = TestApp::builder().start().await;
    bot.command(3001, "en", "help");
    bot.messages(3001, 1).await;
    for kind in [fakes::telegram::FaultKind::TooManyRequests, fakes::telegram::FaultKind::ServerError] {
        bot.tg.inject_fault(fakes::telegram::Fault {
            method: "sendMessage".into(),
            count: 1,
            kind,
            retry_after: Some(1),
            processed: false,
        });
        bot.command(3001, "en", "support");
    }
    let chat = bot.messages(3001, 3).await;
    assert_eq!(chat.messages.len(), 3, "each answer once: {chat:?}");
    // Both faults hit the first answer, which was retried until it went through. The last row
    // is marked sent just after Telegram took it: wait for that mark.
    bot.until("every answer marked sent", "SELECT COUNT(*) FROM outbox WHERE state <> 'sent'", 0).await;
    assert_eq!(bot.count("SELECT SUM(attempts) FROM outbox WHERE state = 'sent'").await, 2);
    bot.finish().await;
}

#[tokio::test]
async fn settings_buttons_change_the_model_price_and_language() {
    let bot = TestApp::builder().start().await;
    bot.db.user_with(4001, 100).await;
    bot.command(4001, "ru", "settings");
    let chat = bot.messages(4001, 1).await;
    let screen = &chat.messages[0];
    assert!(screen.text().unwrap_or("").contains("Модель: Nano Banana 2.1 1K — 10 кр."), "{screen:?}");
    bot.tg.press_button(4001, screen.message_id, "st:m:pro").expect("press Pro");
    let chat = bot.chat(4001, |c| c.messages[0].edits.len() == 1).await;
    assert!(chat.messages[0].text().unwrap_or("").contains("Модель: Nano Banana Pro 1K — 20 кр."));
    bot.tg.press_button(4001, screen.message_id, "st:s:4K").expect("press 4K");
    bot.tg.press_button(4001, screen.message_id, "st:a:16:9").expect("press 16:9");
    bot.tg.press_button(4001, screen.message_id, "lang:en").expect("press English");
    let chat = bot.chat(4001, |c| c.messages[0].edits.len() == 4).await;
    let text = chat.messages[0].text().unwrap_or("");
    assert!(
        text.contains("Model: Nano Banana Pro 4K, 35 cr.") && text.contains("Aspect ratio: 16:9"),
        "{text}"
    );
    bot.text(4001, "ru", "a wide banana");
    let chat = bot.messages(4001, 2).await;
    assert!(chat.messages[1].text().unwrap_or("").contains("Prompt accepted"), "English now: {chat:?}");
    assert_eq!(bot.db.balance(4001).await, (65, 35));
    let (model, size, aspect): (String, Option<String>, String) =
        sqlx::query_as("SELECT model, image_size, aspect_ratio FROM generations")
            .fetch_one(&bot.db.pool)
            .await
            .expect("generation");
    assert_eq!((model.as_str(), size.as_deref(), aspect.as_str()), ("pro", Some("4K"), "16:9"));
    bot.db.assert_audit_clean().await;
    // The queued generation is made, so the test ends with nothing in flight.
    bot.run_worker(fast()).await;
    bot.finish().await;
}

fn photo_update(
    update_id: i64,
    user: i64,
    message_id: i64,
    file_id: &str,
    group: Option<&str>,
    caption: Option<&str>,
) -> Value {
    let mut message = json!({
        "message_id": message_id, "date": 1_700_000_000,
        "chat": {"id": user, "type": "private", "first_name": "T"},
        "from": {"id": user, "is_bot": false, "first_name": "T", "language_code": "en"},
        "photo": [{"file_id": format!("{file_id}-small"), "file_unique_id": "s", "width": 90, "height": 90},
                  {"file_id": file_id, "file_unique_id": "b", "width": 1280, "height": 1280}]
    });
    if let Some(group) = group {
        message["media_group_id"] = json!(group);
    }
    if let Some(caption) = caption {
        message["caption"] = json!(caption);
    }
    json!({ "update_id": update_id, "message": message })
}

#[tokio::test]
async fn an_album_delivered_twice_and_out_of_order_is_one_generation_and_a_late_item_is_refused() {
    let bot = TestApp::builder().start().await;
    bot.db.user_with(5001, 100).await;
    bot.command(5001, "en", "help");
    bot.messages(5001, 1).await;
    let items = [
        photo_update(9_300_003, 5001, 303, "photo-c", Some("album-1"), None),
        photo_update(9_300_001, 5001, 301, "photo-a", Some("album-1"), Some("three cats")),
        photo_update(9_300_002, 5001, 302, "photo-b", Some("album-1"), None),
    ];
    for round in 0..2 {
        for item in &items {
            let status = bot.post(Some(SECRET), serde_json::to_vec(item).expect("JSON")).await;
            assert!(status.is_success(), "round {round}: {status}");
        }
    }
    bot.until("the album submitted", "SELECT COUNT(*) FROM generations", 1).await;
    let (prompt, references): (String, Vec<String>) =
        sqlx::query_as("SELECT prompt, reference_file_ids FROM generations")
            .fetch_one(&bot.db.pool)
            .await
            .expect("row");
    assert_eq!(prompt, "three cats");
    assert_eq!(references, ["photo-a", "photo-b", "photo-c"], "in the user's order, each once");
    assert_eq!(bot.db.balance(5001).await, (90, 10));
    let late = photo_update(9_300_004, 5001, 304, "photo-d", Some("album-1"), None);
    assert!(bot.post(Some(SECRET), serde_json::to_vec(&late).expect("JSON")).await.is_success());
    let chat = bot.messages(5001, 3).await;
    let texts: Vec<&str> = chat.messages.iter().map(|m| m.text().unwrap_or("")).collect();
    assert!(
        texts[1].contains("Запрос принят: three cats") || texts[1].contains("Prompt accepted: three cats"),
        "{texts:?}"
    );
    assert!(texts[2].contains("уже принят"), "{texts:?}");
    assert_eq!(bot.count("SELECT COUNT(*) FROM generations").await, 1);
    assert_eq!(bot.db.balance(5001).await, (90, 10));
    bot.db.assert_audit_clean().await;
    // The queued generation is made, so the test ends with nothing in flight.
    bot.run_worker(fast()).await;
    bot.finish().await;
}

#[tokio::test]
async fn a_photo_with_a_caption_is_a_prompt_with_a_reference_and_too_many_are_refused() {
    let bot = TestApp::builder().env("MAX_REFERENCES_FLASH", "3").start().await;
    bot.db.user_with(5101, 100).await;
    bot.command(5101, "en", "help");
    bot.messages(5101, 1).await;
    let single = photo_update(9_400_001, 5101, 401, "solo", None, Some("make it blue"));
    assert!(bot.post(Some(SECRET), serde_json::to_vec(&single).expect("JSON")).await.is_success());
    let references: Vec<String> = sqlx::query_scalar("SELECT reference_file_ids FROM generations")
        .fetch_one(&bot.db.pool)
        .await
        .expect("generation");
    assert_eq!(references, ["solo"]);
    // Nano Banana 2.1 takes at most 3 references here (the deprecated MAX_REFERENCES_FLASH,
    // mapped onto the catalog).
    for (i, id) in ["r1", "r2", "r3", "r4"].iter().enumerate() {
        let caption = (i == 0).then_some("four is too many");
        let item = photo_update(9_400_010 + i as i64, 5101, 410 + i as i64, id, Some("album-4"), caption);
        assert!(bot.post(Some(SECRET), serde_json::to_vec(&item).expect("JSON")).await.is_success());
    }
    let chat = bot.messages(5101, 3).await;
    let refusal = chat.messages[2].text().unwrap_or("");
    assert!(refusal.contains("Слишком много картинок: 4") && refusal.contains("не больше 3"), "{refusal}");
    assert_eq!(bot.count("SELECT COUNT(*) FROM generations").await, 1);
    assert_eq!(bot.db.balance(5101).await, (90, 10));
    bot.db.assert_audit_clean().await;
    // The queued generation is made, so the test ends with nothing in flight.
    bot.run_worker(fast()).await;
    bot.finish().await;
}

#[tokio::test]
async fn telegram_trusted_networks_refuse_other_senders_and_believe_only_trusted_proxies() {
    // The test's requests come from 127.0.0.1: outside 10.0.0.0/8 unless a trusted proxy
    // (127.0.0.1 here) says the sender was inside it.
    let bot = TestApp::builder()
        .env("TELEGRAM_TRUSTED_NETWORKS", "10.0.0.0/8")
        .env("TRUSTED_PROXIES", "127.0.0.1/32")
        .start()
        .await;
    let post = |forwarded: &[&str], id: i64| {
        let body =
            serde_json::to_vec(&json!({"update_id": id, "poll_answer": {"poll_id": "1", "option_ids": []}}))
                .expect("JSON");
        let mut request = bot
            .http
            .post(format!("{}/telegram/webhook", bot.url))
            .header("X-Telegram-Bot-Api-Secret-Token", SECRET)
            .body(body);
        for line in forwarded {
            request = request.header("X-Forwarded-For", *line);
        }
        async move { request.send().await.expect("webhook answers").status().as_u16() }
    };
    assert_eq!(post(&[], 9_400_001).await, 403, "the proxy itself is not Telegram");
    assert_eq!(post(&["203.0.113.9"], 9_400_002).await, 403);
    // A client's own line first, then the proxy's: the proxy's (rightmost) hop decides.
    assert_eq!(post(&["10.1.2.3", "203.0.113.9:5555"], 9_400_003).await, 403);
    assert_eq!(post(&["203.0.113.9", "10.1.2.3:5555"], 9_400_004).await, 200);
    assert_eq!(bot.count("SELECT COUNT(*) FROM telegram_updates").await, 1);
    bot.finish().await;
}
