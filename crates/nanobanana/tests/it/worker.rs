//! The generation worker end to end: `serve` with the fake Telegram, one or more workers with
//! the fake Gemini, real Postgres and Redis (a unique prefix per test), files in a temporary
//! directory. Assertions are on what the user sees, the ledger and the audit.

use std::time::Duration;

use fakes::gemini::Behaviour;
use fakes::telegram::users;
use nanobanana::jobs::pause;
use nanobanana::worker::{Finished, WorkerSettings};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::support::{fast, profile, texts, wait, Leave, TestApp, TestAppBuilder, WAIT};

const ADMINS: [i64; 2] = [9_001, 9_002];
const PRICE: i64 = 10;

/// The service with the admins' chats open (they are alerted when generation pauses).
async fn pipeline() -> TestApp {
    pipeline_with(TestApp::builder()).await
}

async fn pipeline_with(builder: TestAppBuilder) -> TestApp {
    let admins = ADMINS.map(|a| a.to_string()).join(",");
    let p = builder.env("ADMIN_IDS", &admins).start().await;
    for admin in ADMINS {
        p.open_chat(admin, "en").await;
    }
    p
}

#[tokio::test]
async fn worker_delivers_photo_and_original_and_charges_once() {
    let p = pipeline().await;
    p.funded(1_001, 100).await;
    sqlx::query("UPDATE users SET settings = '{\"delivery\": \"photo_and_file\"}' WHERE telegram_id = 1001")
        .execute(&p.db.pool)
        .await
        .expect("settings");
    let id = p.prompt(1_001, "en", "a banana <astronaut> on the moon").await;
    assert_eq!(p.db.balance(1_001).await, (90, PRICE));
    let w = p.start_worker(fast()).await;
    let chat = p.chat(1_001, |c| c.messages.iter().any(|m| m.kind == "document")).await;
    let photo = chat.messages.iter().find(|m| m.kind == "photo").expect("a photo");
    let caption = photo.caption().unwrap_or("");
    assert!(
        caption.contains("a banana <astronaut> on the moon") && caption.contains("Nano Banana 2"),
        "{caption}"
    );
    assert_eq!(
        photo.callback_data(),
        vec![format!("regen:{id}"), format!("edit:{id}"), format!("orig:{id}"), format!("x4:{id}")]
    );
    let document = chat.messages.iter().find(|m| m.kind == "document").expect("a document");
    // The files Telegram got are the stored ones.
    let (result_key, preview_key): (String, String) =
        sqlx::query_as("SELECT result_key, preview_key FROM generations WHERE id = $1")
            .bind(id)
            .fetch_one(&p.db.pool)
            .await
            .expect("keys");
    let stored = |key: &str| std::fs::read(p.storage.join(key)).expect("stored file");
    let sent = |m: &fakes::telegram::BotMessage| {
        let file = m.file.as_ref().expect("file record");
        p.tg.file_bytes(&file.file_id).expect("file bytes").to_vec()
    };
    assert_eq!(sent(photo), stored(&preview_key));
    assert_eq!(sent(document), stored(&result_key));
    p.wait_status(id, "succeeded").await;
    assert_eq!(p.db.balance(1_001).await, (90, 0));
    assert_eq!(p.count("SELECT COUNT(*) FROM transactions WHERE type = 'commit'").await, 1);
    // Telegram's file_id is kept for sending again, with the usage and cost of the call.
    p.until(
        "file ids recorded",
        "SELECT COUNT(*) FROM generations WHERE file_id IS NOT NULL AND document_file_id IS NOT NULL",
        1,
    )
    .await;
    let recorded = p
        .count("SELECT COUNT(*) FROM generations WHERE usage IS NOT NULL AND provider_cost_micro_usd > 0 AND latency_ms >= 0")
        .await;
    assert_eq!(recorded, 1);
    TestApp::stop_worker(w).await;
    p.finish().await;
}

#[tokio::test]
async fn worker_releases_once_and_explains_each_permanent_outcome() {
    let p = pipeline().await;
    let cases = [
        (1_101, "a cat [[blocked]]", "blocked by the model's safety rules"),
        (1_102, "a cat [[text_only]]", "the model declined"),
        (1_103, "a cat [[no_image]]", "returned no picture"),
        (1_104, "a cat", "rejected as invalid"),
    ];
    let mut ids = Vec::new();
    for (user, prompt, _) in cases {
        p.funded(user, 30).await;
        ids.push(p.prompt(user, "en", prompt).await);
    }
    // An aspect ratio Gemini refuses: a 400, never worth a retry.
    sqlx::query("UPDATE generations SET aspect_ratio = '7:3' WHERE user_id = 1104")
        .execute(&p.db.pool)
        .await
        .expect("bad ratio");
    let w = p.start_worker(fast()).await;
    for ((user, _, reason), id) in cases.into_iter().zip(ids) {
        let chat = p.chat(user, |c| texts(c).iter().any(|t| t.contains("could not be made"))).await;
        let told = texts(&chat).into_iter().find(|t| t.contains("could not be made")).unwrap_or_default();
        assert!(told.contains(reason) && told.contains("10 cr. returned"), "{user}: {told}");
        p.wait_status(id, "failed").await;
        assert_eq!(p.db.balance(user).await, (30, 0), "{user}");
        assert_eq!(p.status(id).await.1, 1, "{user}: one attempt, no retries");
    }
    assert_eq!(p.count("SELECT COUNT(*) FROM transactions WHERE type = 'release'").await, 4);
    assert_eq!(p.count("SELECT COUNT(*) FROM generations WHERE result_key IS NOT NULL").await, 0);
    TestApp::stop_worker(w).await;
    p.finish().await;
}

#[tokio::test]
async fn worker_retries_then_succeeds_and_gives_up_after_max_attempts() {
    let p = pipeline().await;
    p.funded(1_201, 50).await;
    p.funded(1_202, 50).await;
    p.gemini.queue(Behaviour::Server(500), 2);
    let flaky = p.prompt(1_201, "en", "a cat").await;
    let w = p.start_worker(fast()).await;
    p.chat(1_201, |c| c.messages.iter().any(|m| m.kind == "photo")).await;
    p.wait_status(flaky, "succeeded").await;
    assert_eq!(p.status(flaky).await.1, 3, "two failures, then the image");
    assert_eq!(p.db.balance(1_201).await, (40, 0));

    let doomed = p.prompt(1_202, "en", "a dog [[503]]").await;
    let chat = p.chat(1_202, |c| texts(c).iter().any(|t| t.contains("could not be made"))).await;
    assert!(texts(&chat).iter().any(|t| t.contains("did not answer after several attempts")), "{chat:?}");
    p.wait_status(doomed, "failed").await;
    assert_eq!(p.status(doomed).await.1, 3);
    assert_eq!(p.db.balance(1_202).await, (50, 0));
    assert!(!chat.messages.iter().any(|m| m.kind == "photo"));
    TestApp::stop_worker(w).await;
    p.finish().await;
}

#[tokio::test]
async fn worker_lease_lost_under_a_live_worker_changes_nothing() {
    let p = pipeline().await;
    p.funded(1_301, 50).await;
    p.gemini.set_latency(Duration::from_millis(2_500));
    let id = p.prompt(1_301, "en", "a slow cat").await;
    // The first worker's lease expires after 1 s and it never renews it.
    let stalled = WorkerSettings { lease: Duration::from_secs(1), heartbeat_every: None, ..fast() };
    let first = p.start_worker(stalled).await;
    wait::until("the first worker claimed", WAIT, || async {
        let holder: Option<String> = sqlx::query_scalar("SELECT worker_id FROM generations WHERE id = $1")
            .bind(id)
            .fetch_one(&p.db.pool)
            .await
            .expect("holder");
        if holder.as_deref() == Some(first.id.as_str()) {
            Ok(())
        } else {
            Err(format!("held by {holder:?}"))
        }
    })
    .await;
    let second = p.start_worker(fast()).await;
    p.wait_status(id, "succeeded").await;
    // Both called Gemini; the first one's late answer was discarded.
    p.gemini.wait_for_requests(2, WAIT).await.expect("two calls");
    let winner: Option<String> = sqlx::query_scalar("SELECT worker_id FROM generations WHERE id = $1")
        .bind(id)
        .fetch_one(&p.db.pool)
        .await
        .expect("holder");
    assert_eq!(winner.as_deref(), Some(second.id.as_str()));
    wait::until("the first worker's answer came back", WAIT, || async {
        match first.worker.stats.get(Some(Finished::Discarded)) {
            0 => Err("nothing discarded"),
            _ => Ok(()),
        }
    })
    .await;
    assert_eq!(first.worker.stats.get(Some(Finished::Succeeded)), 0);
    assert_eq!(second.worker.stats.get(Some(Finished::Succeeded)), 1);
    TestApp::stop_worker(first).await;
    TestApp::stop_worker(second).await;
    let chat = p.chat(1_301, |c| c.messages.iter().any(|m| m.kind == "photo")).await;
    assert_eq!(chat.messages.iter().filter(|m| m.kind == "photo").count(), 1);
    assert_eq!(p.db.balance(1_301).await, (40, 0));
    assert_eq!(p.count("SELECT COUNT(*) FROM transactions WHERE type IN ('commit', 'release')").await, 1);
    p.finish().await;
}

#[tokio::test]
async fn worker_daily_quota_pauses_alerts_admins_once_and_resumes_on_a_probe() {
    let p = pipeline().await;
    p.funded(1_401, 50).await;
    p.gemini.queue(Behaviour::DailyQuota, 2);
    let id = p.prompt(1_401, "en", "a cat").await;
    let w = p.start_worker(fast()).await;
    wait::until("generation paused", WAIT, || async {
        match pause::is_paused(&mut *p.db.conn().await).await.expect("pause flag") {
            Some(_) => Ok(()),
            None => Err("not paused"),
        }
    })
    .await;
    assert_ne!(p.status(id).await.0, "failed", "a paused job is requeued, not failed");
    for admin in ADMINS {
        p.chat(admin, |c| texts(c).iter().any(|t| t.contains("Generation is paused"))).await;
    }
    // The second probe also hits the quota; the third succeeds and generation resumes.
    p.wait_status(id, "succeeded").await;
    assert_eq!(p.status(id).await.1, 1, "paused calls do not count as attempts");
    assert!(pause::is_paused(&mut *p.db.conn().await).await.expect("pause flag").is_none());
    for admin in ADMINS {
        let chat = p.chat(admin, |c| texts(c).iter().any(|t| t.contains("Generation resumed"))).await;
        let paused = texts(&chat).iter().filter(|t| t.contains("Generation is paused")).count();
        assert_eq!(paused, 1, "admins are alerted once per pause");
    }
    assert_eq!(p.gemini.requests().len(), 3);
    p.chat(1_401, |c| c.messages.iter().any(|m| m.kind == "photo")).await;
    assert_eq!(p.db.balance(1_401).await, (40, 0));
    TestApp::stop_worker(w).await;
    p.finish().await;
}

#[tokio::test]
async fn worker_shutdown_hands_back_in_flight_jobs() {
    let p = pipeline().await;
    p.funded(1_501, 50).await;
    let id = p.prompt(1_501, "en", "a cat [[hang]]").await;
    let w = p.start_worker(fast()).await;
    p.gemini.wait_for_requests(1, WAIT).await.expect("the call is in flight");
    TestApp::stop_worker(w).await;
    let (status, attempts) = p.status(id).await;
    assert_eq!((status.as_str(), attempts), ("queued", 0), "handed back, attempt not counted");
    let holder: Option<String> = sqlx::query_scalar("SELECT worker_id FROM generations WHERE id = $1")
        .bind(id)
        .fetch_one(&p.db.pool)
        .await
        .expect("holder");
    assert_eq!(holder, None);
    assert_eq!(p.db.balance(1_501).await, (40, PRICE), "still reserved, nothing settled");
    // Its own end: the handed-back generation stays queued (its call hangs at Gemini for good).
    p.finish_leaving(Leave { generations: true, ..Leave::default() }).await;
}

#[tokio::test]
async fn worker_deadline_sweep_fails_overdue_generations_and_tells_the_user() {
    let p = pipeline().await;
    p.funded(1_601, 50).await;
    let id = p.prompt(1_601, "en", "a cat").await;
    sqlx::query("UPDATE generations SET deadline = now() - interval '1 second' WHERE id = $1")
        .bind(id)
        .execute(&p.db.pool)
        .await
        .expect("overdue");
    let w = p.start_worker(fast()).await;
    let chat = p.chat(1_601, |c| texts(c).iter().any(|t| t.contains("it took too long"))).await;
    assert!(texts(&chat).iter().any(|t| t.contains("10 cr. returned")), "{chat:?}");
    p.wait_status(id, "failed").await;
    assert_eq!(p.db.balance(1_601).await, (50, 0));
    assert!(p.gemini.requests().is_empty(), "an overdue job is never called");
    TestApp::stop_worker(w).await;
    p.finish().await;
}

#[tokio::test]
async fn worker_run_serves_and_works_in_one_process_until_shutdown() {
    let p = pipeline().await;
    p.funded(1_701, 50).await;
    // `run` next to the test's `serve`: the second outbox sender waits for the leader lock.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let (stop, rx) = watch::channel(false);
    let config = p.config.clone();
    let run = tokio::spawn(async move { nanobanana::service::run_both(&config, listener, rx).await });
    p.prompt(1_701, "en", "a cat").await;
    p.chat(1_701, |c| c.messages.iter().any(|m| m.kind == "photo")).await;
    let _ = stop.send(true);
    let stopped = tokio::time::timeout(WAIT, run).await.expect("run stops in time");
    stopped.expect("run task").expect("run ended cleanly");
    p.finish().await;
}

#[tokio::test]
async fn worker_process_killed_mid_call_is_finished_by_another_worker() {
    let p = pipeline().await;
    p.funded(1_801, 50).await;
    let id = p.prompt(1_801, "en", "a cat").await;
    // The first call never gets an answer: the process is killed while Gemini holds it.
    p.gemini.queue(Behaviour::Hang, 1);
    let mut child = p.spawn_worker();
    if let Err(e) = p.gemini.wait_for_requests(1, WAIT).await {
        panic!("the worker process never called Gemini ({e:?}); its log:\n{}", p.process_logs());
    }
    assert_eq!(p.status(id).await.0, "processing");
    child.kill().await;
    // Time passes: the dead worker's lease expires.
    sqlx::query("UPDATE generations SET locked_until = now() - interval '1 second' WHERE id = $1")
        .bind(id)
        .execute(&p.db.pool)
        .await
        .expect("expire the lease");
    let w = p.start_worker(fast()).await;
    p.wait_status(id, "succeeded").await;
    let chat = p.chat(1_801, |c| c.messages.iter().any(|m| m.kind == "photo")).await;
    assert_eq!(chat.messages.iter().filter(|m| m.kind == "photo").count(), 1);
    assert_eq!(p.db.balance(1_801).await, (40, 0));
    assert_eq!(p.status(id).await.1, 2, "the killed attempt and the one that finished");
    TestApp::stop_worker(w).await;
    p.finish().await;
}

/// Deletes every Redis key of this test's prefix: `FLUSHALL` for this deployment, without
/// touching the keys of tests running beside it.
async fn flush_prefix(prefix: &str) {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| nanobanana::config::DEFAULT_REDIS_URL.to_owned());
    let client = redis::Client::open(url).expect("REDIS_URL");
    let mut conn = client.get_multiplexed_async_connection().await.expect("redis");
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut conn).await.expect("KEYS");
    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await.expect("DEL");
    }
}

#[tokio::test]
async fn worker_redis_data_lost_with_jobs_queued_and_in_flight_all_finish() {
    let p = pipeline().await;
    p.gemini.set_latency(Duration::from_millis(300));
    let users = [1_901, 1_902, 1_903, 1_904];
    let mut ids = Vec::new();
    for user in users {
        p.funded(user, 50).await;
        ids.push(p.prompt(user, "en", "a cat").await);
    }
    let w = p.start_worker(WorkerSettings { concurrency: 2, ..fast() }).await;
    p.gemini.wait_for_requests(1, WAIT).await.expect("calls in flight");
    flush_prefix(&p.config.redis.prefix).await;
    // A request after the loss is signalled into a stream that no longer has its group.
    p.funded(1_905, 50).await;
    ids.push(p.prompt(1_905, "en", "a dog").await);
    for id in &ids {
        p.wait_status(*id, "succeeded").await;
    }
    for user in users.into_iter().chain([1_905]) {
        p.chat(user, |c| c.messages.iter().any(|m| m.kind == "photo")).await;
        assert_eq!(p.db.balance(user).await, (40, 0));
    }
    TestApp::stop_worker(w).await;
    p.finish().await;
}

/// Queues `prompt` for `user` as a request would (reserve + insert in one transaction).
async fn queue_generation(p: &TestApp, user: i64, prompt: &str) -> Uuid {
    p.db.request_prompt(user, PRICE, prompt).await.expect("queued")
}

#[tokio::test]
async fn worker_pair_takes_a_thousand_generations_with_faults_to_the_end() {
    let p = pipeline().await;
    let (users, per_user) = (50_i64, 20_usize);
    for user in 0..users {
        p.db.user_with(20_000 + user, PRICE * 20).await;
    }
    // Transient faults on the first calls, whoever makes them; permanent ones by prompt.
    p.gemini.queue(Behaviour::Server(503), 60);
    p.gemini.queue(Behaviour::Drop, 20);
    let mut expected_failures = 0;
    for n in 0..(users as usize * per_user) {
        let user = 20_000 + (n as i64 % users);
        let prompt = match n % 20 {
            0 => "a cat [[blocked]]",
            1 => "a cat [[text_only]]",
            2 => "a cat [[503]]",
            _ => "a cat",
        };
        expected_failures += usize::from(n % 20 < 3);
        queue_generation(&p, user, &format!("{prompt} #{n}")).await;
    }
    let settings = WorkerSettings { concurrency: 8, ..fast() };
    let (a, b) = (p.start_worker(settings.clone()).await, p.start_worker(settings).await);
    let started = tokio::time::Instant::now();
    wait::until("all generations ended", Duration::from_secs(240), || async {
        let unfinished =
            p.count("SELECT COUNT(*) FROM generations WHERE status IN ('queued', 'processing')").await;
        if unfinished == 0 {
            Ok(())
        } else {
            Err(format!("{unfinished} queued or processing"))
        }
    })
    .await;
    eprintln!("1000 generations ended in {:?}", started.elapsed());
    TestApp::stop_worker(a).await;
    TestApp::stop_worker(b).await;
    let failed = p.count("SELECT COUNT(*) FROM generations WHERE status = 'failed'").await;
    assert_eq!(failed, expected_failures as i64);
    assert_eq!(p.count("SELECT COUNT(*) FROM transactions WHERE type = 'commit'").await, 1000 - failed);
    assert_eq!(p.count("SELECT COUNT(*) FROM transactions WHERE type = 'release'").await, failed);
    let delivered = p.count("SELECT COUNT(*) FROM outbox WHERE method = 'sendPhoto'").await;
    assert_eq!(delivered, 1000 - failed, "one photo per success");
    p.db.assert_audit_clean().await;
    // Its own end: these users never opened a chat, so their messages are dropped, and at
    // Telegram's pace they would take minutes to go.
    p.finish_leaving(Leave { pending_outbox: true, dropped_outbox: true, ..Leave::default() }).await;
}

#[tokio::test]
async fn worker_downloads_stores_and_sends_reference_photos() {
    let p = pipeline().await;
    p.funded(2_101, 50).await;
    let spec = users::ImageSpec {
        caption: Some("make it blue".into()),
        width: Some(80),
        height: Some(60),
        ..Default::default()
    };
    let sent = users::photo(p.tg.state(), 2_101, &profile("en"), &spec, None).expect("photo");
    let file_id = sent.file_id.expect("the photo's file id");
    p.chat(2_101, |c| c.messages.len() >= 2).await;
    let id: Uuid = sqlx::query_scalar("SELECT id FROM generations WHERE user_id = 2101")
        .fetch_one(&p.db.pool)
        .await
        .expect("a generation with a reference");
    let w = p.start_worker(fast()).await;
    p.wait_status(id, "succeeded").await;
    let original = p.tg.file_bytes(&file_id).expect("the user's photo").to_vec();
    let requests = p.gemini.requests();
    let references = &requests.first().expect("one call").references;
    assert_eq!(references.len(), 1);
    assert_eq!(references[0].size, original.len());
    let stored = std::fs::read_dir(p.storage.join(format!("references/{id}"))).expect("references stored");
    let stored: Vec<Vec<u8>> =
        stored.map(|e| std::fs::read(e.expect("entry").path()).expect("read")).collect();
    assert_eq!(stored, vec![original]);
    p.chat(2_101, |c| c.messages.iter().any(|m| m.kind == "photo")).await;
    assert_eq!(p.db.balance(2_101).await, (40, 0));
    TestApp::stop_worker(w).await;
    p.finish().await;
}

#[tokio::test]
async fn worker_scales_down_references_larger_than_the_model_needs() {
    let p = pipeline().await;
    p.funded(2_102, 50).await;
    let spec = users::ImageSpec {
        caption: Some("make it blue".into()),
        width: Some(3000),
        height: Some(1500),
        ..Default::default()
    };
    let sent = users::photo(p.tg.state(), 2_102, &profile("en"), &spec, None).expect("photo");
    let file_id = sent.file_id.expect("the photo's file id");
    p.chat(2_102, |c| c.messages.len() >= 2).await;
    let id: Uuid = sqlx::query_scalar("SELECT id FROM generations WHERE user_id = 2102")
        .fetch_one(&p.db.pool)
        .await
        .expect("a generation with a reference");
    let w = p.start_worker(fast()).await;
    p.wait_status(id, "succeeded").await;
    let original = p.tg.file_bytes(&file_id).expect("the user's photo").to_vec();
    let stored = std::fs::read(p.storage.join(format!("references/{id}/0.jpg"))).expect("stored as a JPEG");
    let info = nanobanana::gemini::sniff(&stored).expect("an image");
    assert_eq!((info.width, info.height), (2048, 1024), "scaled to the model's 2048 px");
    let requests = p.gemini.requests();
    let references = &requests.first().expect("one call").references;
    assert_eq!(references.len(), 1);
    assert_eq!(references[0].size, stored.len(), "Gemini got what was stored");
    assert_ne!(stored, original);
    TestApp::stop_worker(w).await;
    p.finish().await;
}

/// `WORKER_MEMORY_BUDGET_MB` at its least (32): each job's references (reserved at their
/// worst case, a 20 MB download each, and their base64 copies) and answer need more than the
/// whole budget, so each takes all of it and they run one at a time, never waiting for one
/// another forever, each keeping its lease while it waits; everything is returned once they end.
#[tokio::test]
async fn worker_jobs_needing_more_than_the_whole_memory_budget_run_one_at_a_time() {
    let p = pipeline_with(TestApp::builder().env("WORKER_MEMORY_BUDGET_MB", "32")).await;
    let users = [2_111, 2_112, 2_113];
    for user in users {
        p.funded(user, 50).await;
        let spec = users::ImageSpec {
            caption: Some("make it blue".into()),
            width: Some(300),
            height: Some(200),
            ..Default::default()
        };
        users::photo(p.tg.state(), user, &profile("en"), &spec, None).expect("photo");
        p.chat(user, |c| c.messages.len() >= 2).await;
    }
    let w = p.start_worker(fast()).await;
    let budget = w.worker.memory.total();
    assert_eq!(budget, 32 << 20);
    for user in users {
        let id: Uuid = sqlx::query_scalar("SELECT id FROM generations WHERE user_id = $1")
            .bind(user)
            .fetch_one(&p.db.pool)
            .await
            .expect("a generation with a reference");
        p.wait_status(id, "succeeded").await;
        p.chat(user, |c| c.messages.iter().any(|m| m.kind == "photo")).await;
    }
    assert_eq!(p.gemini.requests().len(), 3, "one call each: none lost its lease while it waited");
    assert_eq!(w.worker.memory.available(), budget, "all returned");
    TestApp::stop_worker(w).await;
    p.finish().await;
}

/// A Gemini that answers every call with an image part whose bytes have a PNG header and
/// nothing decodable after it.
async fn garbage_gemini() -> (String, JoinHandle<()>) {
    use base64::Engine;
    let mut png = vec![0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n', 0, 0, 0, 13];
    png.extend(b"IHDR");
    png.extend(64u32.to_be_bytes());
    png.extend(64u32.to_be_bytes());
    png.extend([8, 6, 0, 0, 0, 0, 0, 0, 0]);
    png.extend([0x5a; 64]);
    let data = base64::engine::general_purpose::STANDARD.encode(&png);
    let answer = serde_json::json!({
        "candidates": [{"content": {"role": "model", "parts": [{"inlineData": {"mimeType": "image/png", "data": data}}]},
                        "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 1290, "totalTokenCount": 1295}
    });
    let app = axum::Router::new().fallback(move || {
        let answer = answer.clone();
        async move { axum::Json(answer) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, server)
}

#[tokio::test]
async fn worker_never_charges_for_an_undecodable_image() {
    let (url, server) = garbage_gemini().await;
    let p = pipeline_with(TestApp::builder().gemini_url(url)).await;
    p.funded(2_201, 50).await;
    let id = p.prompt(2_201, "en", "a cat").await;
    let w = p.start_worker(fast()).await;
    let chat = p.chat(2_201, |c| texts(c).iter().any(|t| t.contains("could not be made"))).await;
    assert!(!chat.messages.iter().any(|m| m.kind == "photo"));
    p.wait_status(id, "failed").await;
    // Asked for once more (each call costs the operator money), then given up in one attempt.
    assert_eq!(p.status(id).await.1, 1, "one attempt, two calls, then given up");
    assert!(texts(&chat).iter().any(|t| t.contains("not a picture")), "told what happened");
    assert_eq!(p.db.balance(2_201).await, (50, 0));
    assert_eq!(p.count("SELECT COUNT(*) FROM transactions WHERE type = 'commit'").await, 0);
    let error: Option<String> = sqlx::query_scalar("SELECT error FROM generations WHERE id = $1")
        .bind(id)
        .fetch_one(&p.db.pool)
        .await
        .expect("error");
    assert!(error.as_deref().is_some_and(|e| e.contains("not a picture")), "{error:?}");
    TestApp::stop_worker(w).await;
    p.finish().await;
    server.abort();
}

#[tokio::test]
async fn worker_process_on_sigterm_hands_back_and_exits_zero() {
    let p = pipeline().await;
    p.funded(2_301, 50).await;
    let id = p.prompt(2_301, "en", "a cat [[hang]]").await;
    let mut child = p.spawn_worker();
    if let Err(e) = p.gemini.wait_for_requests(1, WAIT).await {
        panic!("the worker process never called Gemini ({e:?}); its log:\n{}", p.process_logs());
    }
    let exit = child.terminate().await;
    assert!(exit.success(), "{exit:?}");
    assert_eq!(p.status(id).await, ("queued".to_owned(), 0), "handed back, attempt not counted");
    assert_eq!(p.db.balance(2_301).await, (40, PRICE));
    // Its own end: the handed-back generation stays queued (its call hangs at Gemini for good).
    p.finish_leaving(Leave { generations: true, ..Leave::default() }).await;
}

#[tokio::test]
async fn worker_processes_take_a_thousand_generations_through_faults_and_a_kill() {
    let p = pipeline().await;
    let users = 50_i64;
    for user in 0..users {
        p.db.user_with(30_000 + user, PRICE * 20).await;
    }
    let mut permanent = 0;
    for n in 0..1000_usize {
        let prompt = match n % 25 {
            0 => "a cat [[blocked]]",
            1 => "a cat [[no_image]]",
            _ => "a cat",
        };
        permanent += usize::from(n % 25 < 2);
        queue_generation(&p, 30_000 + (n as i64 % users), &format!("{prompt} #{n}")).await;
    }
    p.gemini.queue(Behaviour::Server(503), 40);
    let mut first = p.spawn_worker();
    let mut second = p.spawn_worker();
    let finished = "SELECT COUNT(*) FROM generations WHERE status IN ('succeeded', 'failed')";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    wait::until("300 generations ended", Duration::from_secs(120), || async {
        match p.count(finished).await {
            n if n >= 300 => Ok(()),
            n => Err(format!("{n} ended; the workers' logs:\n{}", p.process_logs())),
        }
    })
    .await;
    // Connections drop mid-answer, and one process dies with jobs in hand.
    p.gemini.queue(Behaviour::Drop, 10);
    first.kill().await;
    // Its leases run out (as 60 s would make them), and a replacement starts.
    sqlx::query("UPDATE generations SET locked_until = now() WHERE status = 'processing'")
        .execute(&p.db.pool)
        .await
        .expect("expire the leases");
    let mut third = p.spawn_worker();
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    wait::until("all generations ended", left, || async {
        let unfinished =
            p.count("SELECT COUNT(*) FROM generations WHERE status IN ('queued', 'processing')").await;
        match unfinished {
            0 => Ok(()),
            n => Err(format!("{n} queued or processing; the workers' logs:\n{}", p.process_logs())),
        }
    })
    .await;
    for child in [&mut second, &mut third] {
        assert!(child.terminate().await.success());
    }
    let failed = p.count("SELECT COUNT(*) FROM generations WHERE status = 'failed'").await;
    assert_eq!(failed, permanent as i64, "only the permanent refusals failed");
    assert_eq!(p.count("SELECT COUNT(*) FROM transactions WHERE type = 'commit'").await, 1000 - failed);
    assert_eq!(p.count("SELECT COUNT(*) FROM outbox WHERE method = 'sendPhoto'").await, 1000 - failed);
    p.db.assert_audit_clean().await;
    // Its own end: these users never opened a chat, so their messages are dropped, and at
    // Telegram's pace they would take minutes to go.
    p.finish_leaving(Leave { pending_outbox: true, dropped_outbox: true, ..Leave::default() }).await;
}
