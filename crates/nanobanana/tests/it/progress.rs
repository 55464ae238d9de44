//! What the user sees while a generation runs and after it: the refusal while generation is
//! paused, the status message (queued with its place → generating → done or failed) and its
//! order against the photo, the `upload_photo` chat action, and the buttons under the photo
//! (🔁 regenerate, ✏️ edit, 📎 original), in both languages, through the fake Telegram and the
//! fake Gemini over HTTP with real Postgres and Redis.

use std::time::Duration;

use fakes::telegram::{BotMessage, ChatRecord};
use nanobanana::jobs::pause;
use uuid::Uuid;

use crate::support::{fast, texts, wait, TestApp, WAIT};

fn photos(chat: &ChatRecord) -> Vec<&BotMessage> {
    chat.messages.iter().filter(|m| m.kind == "photo").collect()
}

/// The status message of `generation`: the message its outbox row got.
async fn status_message(p: &TestApp, generation: Uuid) -> i64 {
    wait::until("the status message sent", WAIT, || async {
        let id: Option<i64> = sqlx::query_scalar(
            "SELECT o.message_id FROM generations g JOIN outbox o ON o.id = g.status_outbox_id WHERE g.id = $1",
        )
        .bind(generation)
        .fetch_one(&p.db.pool)
        .await
        .expect("status row");
        id.ok_or("not yet")
    })
    .await
}

/// Every event touching message `message_id` comes before the event that sent `photo_id`.
fn no_status_after_photo(chat: &ChatRecord, message_id: i64, photo_id: i64) {
    let position = |wanted: i64, methods: &[&str]| -> Vec<usize> {
        let events = chat.events.iter().enumerate();
        let touching = events.filter(|(_, e)| {
            methods.contains(&e.method.as_str()) && e.detail["message_id"].as_i64() == Some(wanted)
        });
        touching.map(|(i, _)| i).collect()
    };
    let photo = position(photo_id, &["sendPhoto"]);
    assert_eq!(photo.len(), 1, "one photo: {chat:#?}");
    let status = position(message_id, &["sendMessage", "editMessageText"]);
    assert!(!status.is_empty());
    assert!(status.iter().all(|i| *i < photo[0]), "a status event after the photo: {:#?}", chat.events);
}

#[tokio::test]
async fn progress_goes_queued_generating_done_before_the_photo_in_both_languages() {
    let p = TestApp::builder().start().await;
    for (user, lang) in [(5_001, "en"), (5_002, "ru")] {
        p.open_chat(user, lang).await;
        p.db.user_with(user, 50).await;
    }
    let first = p.prompt(5_001, "en", "a slow <banana>").await;
    let second = p.prompt(5_002, "ru", "медленный банан").await;
    // No worker yet: both wait, each told its place in the queue.
    let queued = texts(&p.chat(5_001, |c| !c.messages.is_empty()).await).join("\n");
    assert!(
        queued.contains("Prompt accepted: a slow <banana>") && queued.contains("Place in queue: 1"),
        "{queued}"
    );
    let queued = texts(&p.chat(5_002, |c| !c.messages.is_empty()).await).join("\n");
    assert!(queued.contains("Запрос принят") && queued.contains("Место в очереди: 2"), "{queued}");

    p.gemini.set_latency(Duration::from_millis(5_000));
    let w = p.start_worker(fast()).await;
    for (user, generation, generating, done) in [
        (5_001, first, "Generating: a slow", "Done: a slow"),
        (5_002, second, "Рисую: медленный", "Готово: медленный"),
    ] {
        let message = status_message(&p, generation).await;
        // While Gemini works: "generating" with the elapsed time, and the chat action.
        let chat = p
            .chat(user, |c| {
                let shown = c.messages.iter().find(|m| m.message_id == message);
                shown.is_some_and(|m| {
                    m.text().unwrap_or("").contains(generating)
                        || m.edits.iter().any(|e| e["text"].as_str().unwrap_or("").contains(generating))
                }) && c.chat_actions.iter().any(|a| a == "upload_photo")
            })
            .await;
        assert!(chat.chat_actions.iter().all(|a| a == "upload_photo"));
        let chat = p.chat(user, |c| !photos(c).is_empty()).await;
        let status = chat.messages.iter().find(|m| m.message_id == message).expect("status message");
        assert!(status.text().unwrap_or("").contains(done), "{status:#?}");
        no_status_after_photo(&chat, message, photos(&chat)[0].message_id);
        p.wait_status(generation, "succeeded").await;
    }
    TestApp::stop_worker(w).await;
    p.finish().await;
}

#[tokio::test]
async fn a_status_edit_never_arrives_after_the_photo_and_a_failure_says_why_in_place() {
    let p = TestApp::builder().worker(fast()).start().await;
    p.open_chat(5_101, "ru").await;
    p.db.user_with(5_101, 100).await;
    let mut done = Vec::new();
    for round in 0..4 {
        let id = p.prompt(5_101, "ru", &format!("быстрый банан {round}")).await;
        p.wait_status(id, "succeeded").await;
        done.push(id);
    }
    let chat = p.chat(5_101, |c| photos(c).len() == 4).await;
    for (id, photo) in done.iter().zip(photos(&chat)) {
        let message = status_message(&p, *id).await;
        no_status_after_photo(&chat, message, photo.message_id);
    }
    // A refusal: the status message itself says why and that the credits came back.
    let blocked = p.prompt(5_101, "ru", "кот [[blocked]]").await;
    p.wait_status(blocked, "failed").await;
    let message = status_message(&p, blocked).await;
    let chat = p
        .chat(5_101, |c| {
            c.messages
                .iter()
                .any(|m| m.message_id == message && m.text().unwrap_or("").contains("Не удалось"))
        })
        .await;
    let status = chat.messages.iter().find(|m| m.message_id == message).expect("status");
    let text = status.text().unwrap_or("");
    assert!(text.contains("правилами безопасности") && text.contains("10 кр. вернулись"), "{text}");
    assert_eq!(chat.messages.len(), 1 + 4 * 2 + 1, "welcome, 4 × (status, photo), the failed status");
    assert_eq!(p.db.balance(5_101).await, (60, 0));
    p.finish().await;
}

#[tokio::test]
async fn result_buttons_regenerate_edit_and_send_the_original_in_both_languages() {
    let p = TestApp::builder().start().await;
    let pro = p.config.catalog.find("pro").expect("pro").price(nanobanana::domain::ImageSize::K2).get();
    for (user, lang, toasts) in [
        (5_201, "en", ["Sending the original", "Generating again", "Write what to change"]),
        (5_202, "ru", ["Отправляю оригинал", "Генерирую ещё раз", "Напишите, что изменить"]),
    ] {
        p.open_chat(user, lang).await;
        p.db.user_with(user, 1_000).await;
        let pro_16_9 = r#"{"model": "pro", "size": "2K", "aspect_ratio": "16:9"}"#;
        sqlx::query("UPDATE users SET settings = $2::jsonb WHERE telegram_id = $1")
            .bind(user)
            .bind(pro_16_9)
            .execute(&p.db.pool)
            .await
            .expect("settings");
        let w = p.start_worker(fast()).await;
        let first = p.prompt(user, lang, "a banana boat").await;
        p.wait_status(first, "succeeded").await;
        let chat = p.chat(user, |c| photos(c).len() == 1).await;
        let photo = photos(&chat)[0].clone();
        let data = photo.callback_data();

        // 📎 the stored original, as a document.
        assert_eq!(p.press(user, photo.message_id, &data[2]).await, toasts[0]);
        let chat = p.chat(user, |c| c.messages.iter().any(|m| m.kind == "document")).await;
        let document = chat.messages.iter().find(|m| m.kind == "document").expect("document");
        let file = document.file.as_ref().expect("file");
        let result_key: String = sqlx::query_scalar("SELECT result_key FROM generations WHERE id = $1")
            .bind(first)
            .fetch_one(&p.db.pool)
            .await
            .expect("result key");
        let stored = std::fs::read(p.storage.join(&result_key)).expect("stored original");
        assert_eq!(p.tg.file_bytes(&file.file_id).expect("sent bytes").to_vec(), stored);

        // 🔁 the same prompt and settings, though the user has changed theirs since.
        sqlx::query("UPDATE users SET settings = '{}' WHERE telegram_id = $1")
            .bind(user)
            .execute(&p.db.pool)
            .await
            .expect("settings");
        assert_eq!(p.press(user, photo.message_id, &data[0]).await, toasts[1]);
        let again: (Uuid, String, String, Option<String>, String, i64) = sqlx::query_as(
            "SELECT id, prompt, model, image_size, aspect_ratio, cost FROM generations
             WHERE user_id = $1 AND id <> $2",
        )
        .bind(user)
        .bind(first)
        .fetch_one(&p.db.pool)
        .await
        .expect("a new generation");
        assert_eq!(
            (again.1.as_str(), again.2.as_str(), again.3.as_deref(), again.4.as_str(), again.5),
            ("a banana boat", "pro", Some("2K"), "16:9", pro)
        );
        p.wait_status(again.0, "succeeded").await;
        assert_eq!(p.db.balance(user).await, (1_000 - 2 * pro, 0), "charged for each, once");

        // ✏️ the next text edits this picture: the conversation that made it goes to Gemini
        // (the model turn with its signatures), at the picture's own model, size and ratio ...
        assert_eq!(p.press(user, photo.message_id, &data[1]).await, toasts[2]);
        p.text(user, lang, "make it blue");
        let edited = wait_generation(&p, user, "make it blue").await;
        let (parent, model, size, ratio): (Option<Uuid>, String, Option<String>, String) = sqlx::query_as(
            "SELECT parent_id, model, image_size, aspect_ratio FROM generations WHERE id = $1",
        )
        .bind(edited)
        .fetch_one(&p.db.pool)
        .await
        .expect("the edit");
        assert_eq!(
            (parent, model.as_str(), size.as_deref(), ratio.as_str()),
            (Some(first), "pro", Some("2K"), "16:9")
        );
        p.wait_status(edited, "succeeded").await;
        let seen = p
            .gemini
            .requests()
            .into_iter()
            .find(|r| r.turns.last().is_some_and(|t| t.texts == ["make it blue"]))
            .expect("call");
        let roles: Vec<&str> = seen.turns.iter().map(|t| t.role.as_str()).collect();
        assert_eq!(roles, ["user", "model", "user"]);
        assert_eq!(seen.turns[0].texts, ["a banana boat"]);
        assert!(!seen.turns[1].signatures.is_empty(), "the model turn with its signatures");

        // ... once: the text after it is a plain prompt again, and so is one after the state expired.
        p.press(user, photo.message_id, &data[1]).await;
        sqlx::query("UPDATE users SET awaiting_until = now() - interval '1 second' WHERE telegram_id = $1")
            .bind(user)
            .execute(&p.db.pool)
            .await
            .expect("expire the state");
        p.text(user, lang, "a plain cat");
        let plain = wait_generation(&p, user, "a plain cat").await;
        let references: Vec<String> =
            sqlx::query_scalar("SELECT reference_file_ids FROM generations WHERE id = $1")
                .bind(plain)
                .fetch_one(&p.db.pool)
                .await
                .expect("references");
        assert!(references.is_empty(), "an expired edit is forgotten");
        p.wait_status(plain, "succeeded").await;
        TestApp::stop_worker(w).await;
    }
    p.finish().await;
}

async fn wait_generation(p: &TestApp, user: i64, prompt: &str) -> Uuid {
    wait::until(format!("a generation for {prompt:?}"), WAIT, || async {
        let id: Option<Uuid> =
            sqlx::query_scalar("SELECT id FROM generations WHERE user_id = $1 AND prompt = $2")
                .bind(user)
                .bind(prompt)
                .fetch_optional(&p.db.pool)
                .await
                .expect("generation");
        id.ok_or("none yet")
    })
    .await
}

#[tokio::test]
async fn a_paused_service_refuses_prompts_before_any_reservation_in_both_languages() {
    let bot = TestApp::builder().start().await;
    for (user, lang) in [(5_301, "en"), (5_302, "ru")] {
        bot.command(user, lang, "start");
        bot.messages(user, 1).await;
        bot.db.user_with(user, 100).await;
    }
    let mut conn = bot.db.conn().await;
    pause::pause(&mut conn, "daily_quota: RESOURCE_EXHAUSTED", Duration::from_secs(300))
        .await
        .expect("pause");
    bot.text(5_301, "en", "a cat");
    let told = bot.messages(5_301, 2).await.messages[1].text().unwrap_or("").to_owned();
    assert!(
        told.contains("paused") && told.contains("daily limit") && told.contains("Nothing was charged"),
        "{told}"
    );
    // An invalid key reads as "unavailable".
    pause::pause(&mut conn, "invalid_key: API key not valid", Duration::from_secs(300)).await.expect("pause");
    bot.text(5_302, "ru", "кот");
    let told = bot.messages(5_302, 2).await.messages[1].text().unwrap_or("").to_owned();
    assert!(told.contains("приостановлена") && told.contains("недоступен"), "{told}");
    assert_eq!(bot.count("SELECT COUNT(*) FROM generations").await, 0);
    assert_eq!(bot.count("SELECT COUNT(*) FROM transactions WHERE type = 'reserve'").await, 0);
    assert_eq!(bot.db.balance(5_301).await, (100, 0));
    // Resumed: the same prompt goes through.
    pause::resume(&mut conn).await.expect("resume");
    drop(conn);
    bot.text(5_301, "en", "a cat");
    let told = bot.messages(5_301, 3).await.messages[2].text().unwrap_or("").to_owned();
    assert!(told.contains("Prompt accepted"), "{told}");
    assert_eq!(bot.db.balance(5_301).await.1, 10);
    bot.db.assert_audit_clean().await;
    // The accepted prompt is made, so the test ends with nothing in flight.
    bot.run_worker(fast()).await;
    bot.finish().await;
}
