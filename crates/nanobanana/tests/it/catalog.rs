//! The model catalog end to end (issue 15): the settings screen of each default model, the
//! probe hiding a model Gemini stopped serving (its queue released, the admins told once) and
//! offering it again, honest sizes (a picture smaller than bought is retried once, then charged
//! as the size delivered in the one settlement), and a database of the previous release.

use nanobanana::domain::default_catalog;
use nanobanana::worker::WorkerSettings;

use crate::support::app::{fast, TestApp};

const NB21: &str = "gemini-nano-banana-2.1";
const PRO: &str = "gemini-3-pro-image";

async fn set_settings(p: &TestApp, user: i64, settings: serde_json::Value) {
    sqlx::query("UPDATE users SET settings = $2 WHERE telegram_id = $1")
        .bind(user)
        .bind(settings)
        .execute(&p.db.pool)
        .await
        .expect("settings stored");
}

/// The `/settings` keyboard's callback data, once the `n`-th message arrived.
async fn settings_buttons(p: &TestApp, user: i64, n: usize) -> Vec<String> {
    p.command(user, "en", "settings");
    let chat = p.messages(user, n).await;
    chat.messages[n - 1].callback_data()
}

#[tokio::test]
async fn the_settings_screen_of_each_default_model_offers_exactly_its_sizes_and_ratios() {
    let p = TestApp::builder().start().await;
    p.open_chat(7_001, "en").await;
    let catalog = default_catalog();
    for (n, model) in catalog.models().iter().enumerate() {
        set_settings(&p, 7_001, serde_json::json!({"model": model.key.as_str()})).await;
        let buttons = settings_buttons(&p, 7_001, n + 2).await;
        let sizes: Vec<&str> = buttons.iter().filter_map(|b| b.strip_prefix("st:s:")).collect();
        let want: Vec<&str> =
            if model.offers.len() > 1 { model.sizes().map(|s| s.as_str()).collect() } else { vec![] };
        assert_eq!(sizes, want, "{}", model.key);
        let ratios: Vec<&str> = buttons.iter().filter_map(|b| b.strip_prefix("st:a:")).collect();
        assert_eq!(ratios, model.ratios, "{}", model.key);
        let models: Vec<&str> = buttons.iter().filter_map(|b| b.strip_prefix("st:m:")).collect();
        assert_eq!(models, ["pro", "nb21", "lite"]);
    }
    assert_eq!(catalog.models().iter().map(|m| m.ratios.len()).collect::<Vec<_>>(), [10, 14, 10]);
    p.finish().await;
}

#[tokio::test]
async fn a_model_gemini_stops_serving_is_hidden_its_queue_released_and_admins_told_once() {
    let admin = 7_100;
    let p = TestApp::builder().env("ADMIN_IDS", &admin.to_string()).start().await;
    p.open_chat(admin, "en").await;
    p.funded(7_101, 100).await;
    set_settings(&p, 7_101, serde_json::json!({"model": "pro", "size": "1K"})).await;
    // Queued before any worker runs; then Google retires the model.
    let queued = p.prompt(7_101, "en", "a queued pear").await;
    assert_eq!(p.db.balance(7_101).await, (80, 20));
    p.gemini.remove_model(PRO);

    let w = p.start_worker(fast()).await;
    p.wait_status(queued, "failed").await;
    assert_eq!(p.db.balance(7_101).await, (100, 0), "released");
    let error: String = sqlx::query_scalar("SELECT error FROM generations WHERE id = $1")
        .bind(queued)
        .fetch_one(&p.db.pool)
        .await
        .expect("error");
    assert!(error.starts_with("model_unavailable"), "{error}");
    p.wait_text(7_101, "the model is not available any more").await;
    p.wait_text(admin, "Model unavailable: Nano Banana Pro (gemini-3-pro-image)").await;
    // Hidden from /settings, refused for new requests.
    let buttons = settings_buttons(&p, 7_101, p.tg.chat(7_101).map_or(0, |c| c.messages.len()) + 1).await;
    assert!(
        !buttons.iter().any(|b| b == "st:m:pro") && buttons.iter().any(|b| b == "st:m:nb21"),
        "{buttons:?}"
    );
    p.text(7_101, "en", "another pear");
    p.wait_text(7_101, "Nano Banana Pro 1K is not available right now").await;
    assert_eq!(p.db.balance(7_101).await, (100, 0));
    p.until("still missing", "SELECT COUNT(*) FROM unavailable_models", 1).await;

    p.gemini.restore_model(PRO);
    p.until("model back", "SELECT COUNT(*) FROM unavailable_models", 0).await;
    p.wait_text(admin, "Model available again: Nano Banana Pro (gemini-3-pro-image)").await;
    let n = p.tg.chat(7_101).map_or(0, |c| c.messages.len()) + 1;
    assert!(settings_buttons(&p, 7_101, n).await.iter().any(|b| b == "st:m:pro"));
    let again = p.prompt(7_101, "en", "a pear again").await;
    p.wait_status(again, "succeeded").await;
    TestApp::stop_worker(w).await;
    assert_eq!(p.count_texts(admin, "Model unavailable"), 1, "told once when it went");
    assert_eq!(p.count_texts(admin, "Model available again"), 1, "told once when it came back");
    p.finish().await;
}

fn honest() -> WorkerSettings {
    WorkerSettings { measure_sizes: true, ..fast() }
}

#[tokio::test]
async fn a_4k_picture_answered_at_1k_is_retried_once_then_charged_the_1k_price() {
    let p = TestApp::builder().full_size_images().worker(honest()).start().await;
    p.funded(7_201, 100).await;
    set_settings(&p, 7_201, serde_json::json!({"model": "nb21", "size": "4K", "aspect_ratio": "1:1"})).await;
    p.gemini.set_shrink(true);
    let id = p.prompt(7_201, "en", "a tiny lemon").await;
    p.wait_status(id, "succeeded").await;
    let asked: Vec<_> = p.gemini.requests().into_iter().map(|r| (r.model, r.image_size)).collect();
    assert_eq!(asked, vec![(NB21.to_owned(), Some("4K".to_owned())); 2], "asked for 4K twice, no more");
    // 25 reserved, 10 (the 1K price) charged, 15 back — one settlement row.
    assert_eq!(p.db.balance(7_201).await, (90, 0));
    let (charged, delivered): (Option<i64>, Option<String>) =
        sqlx::query_as("SELECT charged, delivered_size FROM generations WHERE id = $1")
            .bind(id)
            .fetch_one(&p.db.pool)
            .await
            .expect("row");
    assert_eq!((charged, delivered.as_deref()), (Some(10), Some("1K")));
    let settlements = p
        .count(&format!("SELECT COUNT(*) FROM transactions WHERE generation_id = '{id}' AND type IN ('commit', 'release')"))
        .await;
    assert_eq!(settlements, 1);
    p.wait_text(7_201, "came out at 1K instead of 4K: 10 cr. were charged instead of 25").await;

    // Answered at the size bought: charged that size's price, nothing said.
    p.gemini.set_shrink(false);
    set_settings(&p, 7_201, serde_json::json!({"model": "nb21", "size": "2K", "aspect_ratio": "16:9"})).await;
    let id = p.prompt(7_201, "en", "a full lemon").await;
    p.wait_status(id, "succeeded").await;
    assert_eq!(p.db.balance(7_201).await, (75, 0), "2K charged 15");
    assert_eq!(p.gemini.requests().len(), 3);
    p.db.assert_audit_clean().await;
    p.finish().await;
}

#[tokio::test]
async fn an_answer_that_is_not_a_picture_is_asked_for_once_more_then_the_user_is_told() {
    let p = TestApp::builder().worker(fast()).start().await;
    p.funded(7_301, 30).await;
    // One answer that is not a picture, then a good one: delivered after two calls.
    p.gemini.queue(fakes::gemini::Behaviour::Garbage, 1);
    let id = p.prompt(7_301, "en", "a pear").await;
    p.wait_status(id, "succeeded").await;
    assert_eq!(p.gemini.requests().len(), 2);
    // Two in a row: no third call; failed, released, and the user hears why.
    p.gemini.queue(fakes::gemini::Behaviour::Garbage, 2);
    let id = p.prompt(7_301, "en", "another pear").await;
    p.wait_status(id, "failed").await;
    assert_eq!(p.gemini.requests().len(), 4);
    assert_eq!(p.status(id).await.1, 1, "one attempt, two calls");
    p.wait_message(7_301, "told", |m| {
        m.text().is_some_and(|t| t.contains("not a picture"))
            || m.edits.iter().any(|e| e["text"].as_str().is_some_and(|t| t.contains("not a picture")))
    })
    .await;
    assert_eq!(p.db.balance(7_301).await, (20, 0));
    p.finish().await;
}

#[tokio::test]
async fn a_database_of_the_previous_release_keeps_working() {
    let p = TestApp::builder().start().await;
    p.funded(7_401, 100).await;
    p.funded(7_402, 100).await;
    // Settings as the previous release stored them, and one naming a model no longer sold.
    set_settings(
        &p,
        7_401,
        serde_json::json!({"model": "flash", "size": "1K", "aspect_ratio": "16:9", "delivery": "photo"}),
    )
    .await;
    set_settings(&p, 7_402, serde_json::json!({"model": "ultra", "size": "2K", "aspect_ratio": "1:1"})).await;
    // A generation the previous release queued: model 'flash', no size.
    let old = p.db.request_generation(7_401, 10).await.expect("an old generation");
    sqlx::query("UPDATE generations SET model = 'flash', image_size = NULL WHERE id = $1")
        .bind(old)
        .execute(&p.db.pool)
        .await
        .expect("old row");
    let flash = p.prompt(7_401, "en", "a flash pear").await;
    let ultra = p.prompt(7_402, "en", "an ultra pear").await;
    p.prompt(7_402, "en", "a second ultra pear").await;
    p.wait_text(7_402, "The model in your settings (ultra) is no longer offered").await;
    let w = p.start_worker(fast()).await;
    for id in [old, flash, ultra] {
        p.wait_status(id, "succeeded").await;
    }
    TestApp::stop_worker(w).await;
    let rows: Vec<(String, Option<String>, i64)> = sqlx::query_as(
        "SELECT model, model_id, cost FROM generations WHERE id = ANY($1) ORDER BY created_at",
    )
    .bind(vec![old, flash, ultra])
    .fetch_all(&p.db.pool)
    .await
    .expect("rows");
    assert_eq!(rows[0], ("flash".to_owned(), None, 10), "the old row keeps its key and cost");
    assert_eq!(rows[1], ("nb21".to_owned(), Some(NB21.to_owned()), 10));
    assert_eq!(rows[2], ("nb21".to_owned(), Some(NB21.to_owned()), 15), "the default at the size kept");
    let called: Vec<String> = p.gemini.requests().into_iter().map(|r| r.model).collect();
    assert!(called.iter().all(|m| m == NB21), "{called:?}");
    assert_eq!(p.count_texts(7_402, "no longer offered"), 1, "told once");
    p.finish().await;
}
