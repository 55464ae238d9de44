//! The bot's commands beyond the basics, over real HTTP through the fake Telegram: the command
//! menu, admin commands (and their absence for everyone else), `/history`, `/terms`,
//! `/deleteme` with its expiring confirmation.

use std::time::Duration;

use futures_util::future::join_all;
use nanobanana::ledger::Settlement;
use serde_json::{json, Value};

use crate::support::{fast, TestApp, TestDb, SECRET, WAIT};

fn message_update(update_id: i64, user: i64, lang: &str, text: &str) -> Value {
    json!({
        "update_id": update_id,
        "message": {
            "message_id": update_id, "date": 1_700_000_000, "text": text,
            "chat": {"id": user, "type": "private", "first_name": "T"},
            "from": {"id": user, "is_bot": false, "first_name": "T", "language_code": lang}
        }
    })
}

fn callback_update(update_id: i64, user: i64, message_id: i64, data: &str) -> Value {
    json!({
        "update_id": update_id,
        "callback_query": {
            "id": format!("forged-{update_id}"), "data": data, "chat_instance": "1",
            "from": {"id": user, "is_bot": false, "first_name": "T", "language_code": "en"},
            "message": {"message_id": message_id, "date": 1_700_000_000, "chat": {"id": user, "type": "private"}}
        }
    })
}

fn buttons(message: &fakes::telegram::BotMessage) -> Vec<(String, String)> {
    let rows =
        message.reply_markup().and_then(|m| m["inline_keyboard"].as_array().cloned()).unwrap_or_default();
    rows.iter()
        .flat_map(|row| row.as_array().cloned().unwrap_or_default())
        .map(|b| {
            (
                b["text"].as_str().unwrap_or("").to_owned(),
                b["callback_data"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_command_menu_is_registered_in_both_languages() {
    let bot = TestApp::builder().start().await;
    let commands = bot.tg.state().lock().commands.clone();
    let names = |key: &str| -> Vec<String> {
        commands[key].as_array().map_or_else(Vec::new, |list| {
            list.iter().map(|c| c["command"].as_str().unwrap_or("").to_owned()).collect()
        })
    };
    let expected = [
        "start",
        "help",
        "balance",
        "buy",
        "settings",
        "history",
        "styles",
        "support",
        "terms",
        "paysupport",
        "deleteme",
    ];
    assert_eq!(names("default|"), expected, "{commands}");
    assert_eq!(names("default|en"), expected, "{commands}");
    assert_eq!(commands["default|"][3]["description"], "Купить кредиты");
    assert_eq!(commands["default|en"][3]["description"], "Buy credits");
    bot.finish().await;
}

#[tokio::test]
async fn admin_commands_do_not_exist_for_everyone_else() {
    let bot = TestApp::builder().env("ADMIN_IDS", "1100").start().await;
    bot.db.user(1102).await;
    for (i, (command, args)) in
        [("grant", "1101 50 gift"), ("user", "1102"), ("ban", "1102"), ("stats", ""), ("unban", "1102")]
            .iter()
            .enumerate()
    {
        let ru = bot.ask(1101, "ru", command, args, i + 1).await;
        assert_eq!(ru, "Не знаю такой команды. /help — список команд.", "/{command}");
        let en = bot.ask(1103, "en", command, args, i + 1).await;
        assert!(en.starts_with("I don't know that command"), "/{command}: {en}");
    }
    assert_eq!(bot.count("SELECT COUNT(*) FROM transactions").await, 0);
    assert_eq!(bot.count("SELECT COUNT(*) FROM users WHERE is_banned").await, 0);
    bot.drained().await;
    assert_eq!(bot.tg.chat(1101).map(|c| c.messages.len()), Some(5), "nothing else was sent");
    bot.finish().await;
}

/// `/refund` is the admin's; a user who types it is pointed to payment support, in their
/// language, and nothing is refunded.
#[tokio::test]
async fn a_users_refund_points_to_payment_support_in_both_languages() {
    let bot = TestApp::builder().env("ADMIN_IDS", "1100").start().await;
    for (i, args) in ["", "5f0c1a52-0000-4000-8000-000000000000 10"].iter().enumerate() {
        let ru = bot.ask(1104, "ru", "refund", args, i + 1).await;
        assert_eq!(
            ru,
            "Возвраты оформляет поддержка: напишите в /paysupport, за что вы платили и почему хотите вернуть деньги.",
            "/refund {args}"
        );
        let en = bot.ask(1105, "en", "refund", args, i + 1).await;
        assert_eq!(
            en,
            "Refunds are arranged by support: write to /paysupport what you paid for and why you want the money back.",
            "/refund {args}"
        );
    }
    assert_eq!(bot.count("SELECT COUNT(*) FROM refunds").await, 0);
    bot.drained().await;
    bot.finish().await;
}

#[tokio::test]
async fn an_admin_grants_once_however_often_the_update_arrives() {
    let bot = TestApp::builder().env("ADMIN_IDS", "1200, 1210").start().await;
    bot.db.user(1201).await;
    // The fake delivers only to chats it knows: both open theirs first.
    bot.ask(1200, "en", "help", "", 1).await;
    bot.ask(1201, "en", "help", "", 1).await;
    let body = serde_json::to_vec(&message_update(9_300_001, 1200, "en", "/grant 1201 50 welcome gift"))
        .expect("JSON");
    let statuses = join_all((0..4).map(|_| bot.post(Some(SECRET), body.clone()))).await;
    assert!(statuses.iter().all(|s| s.is_success()), "{statuses:?}");
    assert!(bot.post(Some(SECRET), body.clone()).await.is_success());
    bot.drained().await;
    let admin = bot.messages(1200, 2).await;
    assert_eq!(admin.messages.len(), 2, "one answer: {admin:?}");
    assert_eq!(admin.messages[1].text(), Some("Granted 50 cr. to user 1201. Balance: 50."));
    assert_eq!(bot.db.balance(1201).await, (50, 0));
    let rows: Vec<(String, i64, Option<String>, Option<String>)> =
        sqlx::query_as("SELECT type, amount, reason, actor FROM transactions WHERE user_id = 1201")
            .fetch_all(&bot.db.pool)
            .await
            .expect("journal");
    assert_eq!(rows, [("grant".into(), 50, Some("welcome gift".into()), Some("telegram:1200".into()))]);
    let user = bot.messages(1201, 2).await;
    assert_eq!(user.messages.len(), 2, "one note: {user:?}");
    assert_eq!(user.messages[1].text(), Some("🎁 Вам начислено 50 кр. Баланс: 50."));

    // Bad arguments get a clear answer and move nothing, in either language.
    let cases = [
        ("", "Usage: /grant <user id> <credits> <reason>"),
        ("1201", "Usage: /grant <user id> <credits> <reason>"),
        ("abc 5 gift", "Not a user id: abc"),
        ("1201 -5 gift", "Credits must be a whole number from 1 to 1000000000, not -5"),
        ("1201 lots gift", "Credits must be a whole number from 1 to 1000000000, not lots"),
        ("1201 5", "A reason is required (at most 500 characters)."),
        ("1201 5    ", "A reason is required (at most 500 characters)."),
        ("777 5 gift", "No user 777."),
    ];
    for (i, (args, expected)) in cases.iter().enumerate() {
        let text = bot.ask(1200, "en", "grant", args, i + 3).await;
        assert_eq!(text, *expected, "/grant {args}");
    }
    let text = bot.ask(1210, "ru", "grant", "1201 x y", 1).await;
    assert_eq!(text, "Кредиты — целое число от 1 до 1000000000, а не x");
    let text = bot.ask(1210, "ru", "grant", "1201 7 поддержка", 2).await;
    assert_eq!(text, "Начислено 7 кр. пользователю 1201. Баланс: 57.");
    assert_eq!(bot.count("SELECT COUNT(*) FROM transactions").await, 2);
    bot.db.assert_audit_clean().await;
    bot.finish().await;
}

#[tokio::test]
async fn a_banned_user_is_refused_until_unbanned_and_admins_see_users_and_stats() {
    let bot = TestApp::builder().env("ADMIN_IDS", "1300,1310").start().await;
    bot.db.user_with(1301, 30).await;
    assert_eq!(
        bot.ask(1300, "ru", "ban", "1301", 1).await,
        "Пользователь 1301 забанен: новые запросы отклоняются."
    );
    // No replies to banned users: the message is recorded, nothing is sent or charged.
    bot.text(1301, "ru", "a cat");
    bot.command(1301, "ru", "help");
    bot.tg.wait_until_no_pending_updates(crate::support::WAIT).await.expect("updates delivered");
    bot.drained().await;
    assert!(bot.tg.chat(1301).is_none_or(|c| c.messages.is_empty()), "{:?}", bot.tg.chat(1301));
    assert_eq!(bot.db.balance(1301).await, (30, 0));
    assert_eq!(bot.count("SELECT COUNT(*) FROM generations").await, 0);
    assert_eq!(bot.ask(1310, "en", "unban", "1301", 1).await, "User 1301 is unbanned.");
    bot.text(1301, "ru", "a cat");
    let chat = bot.messages(1301, 1).await;
    assert!(chat.messages[0].text().unwrap_or("").contains("Запрос принят"), "{chat:?}");
    assert_eq!(bot.db.balance(1301).await, (20, 10));

    let user = bot.ask(1300, "ru", "user", "1301", 2).await;
    assert!(user.contains("Пользователь 1301") && user.contains("Статус: активен"), "{user}");
    assert!(user.contains("Баланс: 20, в резерве: 10") && user.contains("начисление +30 → 30"), "{user}");
    let user = bot.ask(1310, "en", "user", "1301", 2).await;
    assert!(user.contains("Balance: 20, reserved: 10") && user.contains("reserved -10 → 20"), "{user}");
    assert_eq!(bot.ask(1310, "en", "user", "", 3).await, "Usage: /user <user id>");
    assert_eq!(bot.ask(1310, "en", "ban", "12x", 4).await, "Not a user id: 12x");
    assert_eq!(bot.ask(1310, "en", "ban", "404", 5).await, "No user 404.");

    let stats = bot.ask(1300, "ru", "stats", "", 3).await;
    assert!(stats.contains("Генераций сегодня: 1 (в очереди 1"), "{stats}");
    assert!(stats.contains("Конверсия в оплату: 0 из 3 (0.0%)"), "{stats}");

    // The generation finishes and the user pays for a pack.
    let id: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM generations").fetch_one(&bot.db.pool).await.expect("id");
    let epoch = bot.db.start(id).await;
    bot.db.settle(id, epoch, Settlement::Commit).await.expect("commit");
    let payment = bot.db.succeeded_charge(1301, 100).await;
    bot.db.credit(payment).await.expect("credited");
    let stats = bot.ask(1310, "en", "stats", "", 6).await;
    for part in [
        "Users: 3; active in 24 h: 3, in 7 days: 3",
        "Generations today: 1 (queued 0, processing 0, done 1, failed 0); in 7 days: 1",
        "Average cost of a finished one: 10.0 cr.",
        "Conversion to payment: 1 of 3 (33.3%)",
        "Average processing time (7 days): 0.",
        "Credits sold: 100, spent: 10, granted by hand: 30",
        "Revenue: 100.00 ₽ and 0 ⭐",
        // Nano Banana 2.1 1K at $0.034 and 100 ₽ per dollar (the defaults) against 10 credits (₽).
        "Provider cost (as recorded, the tariff where not): 3.40 ₽, margin: 6.60 ₽",
        "Finished by model: Nano Banana 2.1: 1",
    ] {
        assert!(stats.contains(part), "{part:?} in {stats}");
    }
    // What the worker recorded ($0.05 at 100 ₽) replaces the tariff's estimate.
    sqlx::query("UPDATE generations SET provider_cost_micro_usd = 50000")
        .execute(&bot.db.pool)
        .await
        .expect("recorded cost");
    let stats = bot.ask(1310, "en", "stats", "", 7).await;
    assert!(stats.contains("the tariff where not): 5.00 ₽, margin: 5.00 ₽"), "{stats}");
    bot.db.assert_audit_clean().await;
    bot.finish().await;
}

#[tokio::test]
async fn history_lists_generations_with_a_button_for_finished_ones() {
    let bot = TestApp::builder().start().await;
    bot.db.user_with(1401, 100).await;
    let done = bot.db.request_generation(1401, 10).await.expect("generation");
    let epoch = bot.db.start(done).await;
    bot.db.settle(done, epoch, Settlement::Commit).await.expect("commit");
    bot.db.request_generation(1401, 10).await.expect("generation");
    // Neither a Telegram file id nor a stored preview (restored before the audit): sending
    // again is not available. The preview fallback is `delivery.rs`'s.
    sqlx::query(
        "UPDATE generations SET created_at = created_at - interval '1 minute', preview_key = NULL WHERE id = $1",
    )
        .bind(done)
        .execute(&bot.db.pool)
        .await
        .expect("older");

    assert_eq!(bot.ask(1402, "ru", "history", "", 1).await, "Картинок пока нет. Напишите, что нарисовать.");
    // The user existed before writing, so they are spoken to in Russian, the default.
    let text = bot.ask(1401, "en", "history", "", 1).await;
    let chat = bot.messages(1401, 1).await;
    assert!(text.starts_with("🖼 Последние картинки:\n\n1. ⏳ в очереди · Nano Banana 2.1 1K · "), "{text}");
    assert!(text.contains("\n\n2. ✅ готово · Nano Banana 2.1 1K · ") && text.contains("a banana"), "{text}");
    let keys = buttons(&chat.messages[0]);
    let expected = [
        ("Прислать ещё раз №2".to_owned(), format!("h:send:{done}")),
        ("Ещё раз №2".to_owned(), format!("h:again:{done}")),
    ];
    assert_eq!(keys, expected);
    let toast = bot.press(1401, chat.messages[0].message_id, &format!("h:send:{done}")).await;
    assert_eq!(toast, "Повторная отправка пока недоступна.");
    // In English. Someone else's generation or a forged id is not found.
    sqlx::query("UPDATE users SET language = 'en' WHERE telegram_id = 1401")
        .execute(&bot.db.pool)
        .await
        .expect("English");
    let text = bot.ask(1401, "en", "history", "", 2).await;
    let chat = bot.messages(1401, 2).await;
    assert!(text.starts_with("🖼 Recent pictures:\n\n1. ⏳ queued · Nano Banana 2.1 1K · "), "{text}");
    assert!(text.contains("\n\n2. ✅ done · Nano Banana 2.1 1K · "), "{text}");
    assert_eq!(buttons(&chat.messages[1])[0].0, "Send again #2");
    let toast = bot.press(1401, chat.messages[1].message_id, &format!("h:send:{done}")).await;
    assert_eq!(toast, "Sending again is not available yet.");
    for (i, (user, data)) in
        [(1401, "h:send:not-a-uuid".to_owned()), (1402, format!("h:send:{done}"))].into_iter().enumerate()
    {
        let forged = callback_update(9_400_001 + i as i64, user, 1, &data);
        assert!(bot.post(Some(SECRET), serde_json::to_vec(&forged).expect("JSON")).await.is_success());
    }
    bot.drained().await;
    assert_eq!(bot.count("SELECT COUNT(*) FROM outbox WHERE method <> 'sendMessage'").await, 0);

    // Once the delivered photo's file_id is known, the button sends it again.
    let image = fakes::telegram::users::ImageSpec { width: Some(64), height: Some(64), ..Default::default() };
    let sent = bot.tg.send_photo(1403, &image).expect("a photo Telegram knows");
    sqlx::query("UPDATE generations SET file_id = $2 WHERE id = $1")
        .bind(done)
        .bind(sent.file_id.expect("file id"))
        .execute(&bot.db.pool)
        .await
        .expect("file id");
    assert_eq!(bot.press(1401, chat.messages[1].message_id, &format!("h:send:{done}")).await, "Sending");
    let chat = bot.messages(1401, 3).await;
    assert_eq!(chat.messages[2].kind, "photo", "{chat:?}");

    // "Again" is a new request with the same prompt, charged like a typed one.
    assert_eq!(bot.db.balance(1401).await, (80, 10));
    let toast = bot.press(1401, chat.messages[1].message_id, &format!("h:again:{done}")).await;
    assert_eq!(toast, "Generating again");
    let chat = bot.messages(1401, 4).await;
    assert!(chat.messages[3].text().unwrap_or("").starts_with("⏳ Prompt accepted: a banana"), "{chat:?}");
    assert_eq!(bot.db.balance(1401).await, (70, 20));
    assert_eq!(bot.count("SELECT COUNT(*) FROM generations WHERE prompt = 'a banana'").await, 3);
    sqlx::query("UPDATE generations SET preview_key = $2 WHERE id = $1")
        .bind(done)
        .bind(nanobanana::storage::preview_key(done))
        .execute(&bot.db.pool)
        .await
        .expect("preview key back");
    bot.db.assert_audit_clean().await;
    // The queued generations are made, so the test ends with nothing in flight.
    bot.run_worker(fast()).await;
    bot.finish().await;
}

#[tokio::test]
async fn terms_show_the_operators_links() {
    let bot = TestApp::builder()
        .env("TERMS_URL", "https://example.com/terms?a=1&b=2")
        .env("TERMS_VERSION", "2026-11")
        .start()
        .await;
    let en = bot.ask(1501, "en", "terms", "", 1).await;
    assert!(en.contains("Terms of use (version 2026-11): https://example.com/terms?a=1&b=2"), "{en}");
    assert!(en.contains("Privacy policy: not published yet"), "{en}");
    let ru = bot.ask(1502, "ru", "terms", "", 1).await;
    assert!(ru.contains("Условия использования (версия 2026-11)"), "{ru}");
    bot.finish().await;
}

#[tokio::test]
async fn deleteme_erases_personal_data_and_keeps_the_accounts() {
    let bot = TestApp::builder().start().await;
    bot.db.user_with(1601, 40).await;
    bot.ask(1601, "en", "start", "ref-42", 1).await;
    bot.text(1601, "en", "a cat");
    bot.messages(1601, 2).await;
    sqlx::query("UPDATE users SET settings = '{\"model\": \"pro\"}' WHERE telegram_id = 1601")
        .execute(&bot.db.pool)
        .await
        .expect("settings");
    // The generation finishes (no worker runs here): its prompt is then theirs to erase.
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM generations WHERE user_id = 1601")
        .fetch_one(&bot.db.pool)
        .await
        .expect("generation");
    let mut tx = bot.db.pool.begin().await.expect("begin");
    let epoch = nanobanana::jobs::new::start(&mut tx, id).await.expect("start").expect("queued");
    let settled =
        nanobanana::ledger::settle(&mut tx, id, epoch, nanobanana::ledger::Settlement::Commit).await;
    assert!(matches!(settled, Ok(nanobanana::ledger::Settled::Now(_))), "{settled:?}");
    tx.commit().await.expect("commit");
    let journal = bot.count("SELECT COUNT(*) FROM transactions WHERE user_id = 1601").await;
    let balance = bot.db.balance(1601).await;

    // Cancel first: nothing changes.
    let text = bot.ask(1601, "ru", "deleteme", "", 3).await;
    assert!(text.starts_with("Удалить ваши данные?"), "the user's language is kept: {text}");
    let confirm = bot.messages(1601, 3).await.messages[2].clone();
    let keys: Vec<String> = buttons(&confirm).into_iter().map(|(_, data)| data).collect();
    assert_eq!(keys, ["del:yes", "del:no"]);
    assert_eq!(bot.press(1601, confirm.message_id, "del:no").await, "Удаление отменено.");
    // The old button (Telegram may still show it) no longer confirms anything.
    let late = callback_update(9_600_001, 1601, confirm.message_id, "del:yes");
    assert!(bot.post(Some(SECRET), serde_json::to_vec(&late).expect("JSON")).await.is_success());
    assert_eq!(bot.count("SELECT COUNT(*) FROM users WHERE deleted_at IS NOT NULL").await, 0);

    // An expired confirmation does nothing.
    bot.ask(1601, "ru", "deleteme", "", 4).await;
    let confirm = bot.messages(1601, 4).await.messages[3].clone();
    sqlx::query("UPDATE users SET awaiting_until = now() - interval '1 second' WHERE telegram_id = 1601")
        .execute(&bot.db.pool)
        .await
        .expect("expire");
    assert!(bot.press(1601, confirm.message_id, "del:yes").await.starts_with("Подтверждение устарело"));
    assert_eq!(bot.count("SELECT COUNT(*) FROM users WHERE deleted_at IS NOT NULL").await, 0);

    // What else they left: a receipt contact, stored pictures and an album still gathering.
    sqlx::query("UPDATE users SET receipt_contact = 'email:cat@example.com' WHERE telegram_id = 1601")
        .execute(&bot.db.pool)
        .await
        .expect("contact");
    let storage = nanobanana::storage::Storage::from_location(&bot.config.storage).expect("storage");
    let stored = [
        nanobanana::storage::original_key(id, "png"),
        nanobanana::storage::preview_key(id),
        nanobanana::storage::reference_key(id, 0, "jpg"),
    ];
    for key in &stored {
        storage.put(key, bytes::Bytes::from_static(b"picture")).await.expect("put");
    }
    sqlx::query("UPDATE generations SET result_key = $2, preview_key = $3 WHERE id = $1")
        .bind(id)
        .bind(&stored[0])
        .bind(&stored[1])
        .execute(&bot.db.pool)
        .await
        .expect("keys");
    sqlx::query(
        "INSERT INTO album_drafts (user_id, media_group_id, chat_id, items, caption, due_at)
         VALUES (1601, 'album-1', 1601, '[{\"message_id\": 1, \"file_id\": \"f\"}]', 'a cat album',
                 now() + interval '1 hour')",
    )
    .execute(&bot.db.pool)
    .await
    .expect("draft");

    // Confirmed: the data is gone, the accounts stay.
    bot.ask(1601, "ru", "deleteme", "", 5).await;
    let confirm = bot.messages(1601, 5).await.messages[4].clone();
    let toast = bot.press(1601, confirm.message_id, "del:yes").await;
    assert_eq!(toast, "Ваши данные удалены. Если напишете снова, начнём с чистого листа.");
    let row: (Option<String>, Option<String>, Value, Option<String>, bool, Option<String>) = sqlx::query_as(
        "SELECT username, first_name, settings, deep_link, deleted_at IS NOT NULL, awaiting
         FROM users WHERE telegram_id = 1601",
    )
    .fetch_one(&bot.db.pool)
    .await
    .expect("user");
    assert_eq!(row, (None, None, json!({}), None, true, None));
    assert_eq!(bot.count("SELECT COUNT(*) FROM transactions WHERE user_id = 1601").await, journal);
    assert_eq!(bot.db.balance(1601).await, balance);
    assert_eq!(bot.count("SELECT COUNT(*) FROM generations WHERE user_id = 1601").await, 1);
    // What they wrote is gone from the finished generation, the updates and the sent messages.
    // (Updates are kept as ids and hashes, never bodies: none of their columns holds it.)
    for (table, column) in [("generations", "prompt"), ("telegram_updates", "t"), ("outbox", "params")] {
        let left =
            bot.count(&format!("SELECT COUNT(*) FROM {table} t WHERE {column}::text LIKE '%a cat%'")).await;
        assert_eq!(left, 0, "{table}.{column} still holds the prompt");
    }
    let chat = bot.chat(1601, |c| !c.messages[4].edits.is_empty()).await;
    assert_eq!(chat.messages[4].text(), Some(toast.as_str()));
    bot.db.assert_audit_clean().await;
    assert_eq!(bot.count("SELECT COUNT(*) FROM users WHERE receipt_contact IS NOT NULL").await, 0);
    assert_eq!(bot.count("SELECT COUNT(*) FROM album_drafts").await, 0);
    // The stored pictures are deleted by the eraser, soon after.
    crate::support::wait::until("the stored pictures erased", WAIT, || async {
        for key in &stored {
            if storage.exists(key).await.map_err(|e| e.to_string())? {
                return Err(format!("{key} still stored"));
            }
        }
        Ok(())
    })
    .await;
    bot.until(
        "the erasure recorded",
        "SELECT COUNT(*) FROM generations WHERE erased_at IS NOT NULL AND result_key IS NULL",
        1,
    )
    .await;

    // Writing again starts fresh, in the language Telegram says now; nothing is restored.
    let text = bot.ask(1601, "en", "start", "", 6).await;
    assert!(text.contains("Balance: 30 credits"), "{text}");
    let row: (Option<String>, Value, Option<String>, bool, String) = sqlx::query_as(
        "SELECT username, settings, deep_link, deleted_at IS NOT NULL, language FROM users WHERE telegram_id = 1601",
    )
    .fetch_one(&bot.db.pool)
    .await
    .expect("user");
    assert_eq!(row, (None, json!({}), None, false, "en".to_owned()));
    bot.finish().await;
}

#[tokio::test]
async fn conversation_states_expire_and_are_taken_once() {
    use nanobanana::bot::conversation;
    use nanobanana::domain::{Awaiting, AwaitingKind};
    let db = TestDb::new().await;
    db.user(1701).await;
    let mut conn = db.conn().await;
    assert_eq!(conversation::get(&mut conn, 1701).await.expect("get"), None);
    let editing = Awaiting::Edit { generation: uuid::Uuid::now_v7() };
    conversation::set(&mut conn, 1701, &editing, Duration::from_secs(600)).await.expect("set");
    let state = conversation::get(&mut conn, 1701).await.expect("get");
    assert_eq!(state, Some(editing.clone()));
    assert_eq!(
        conversation::take(&mut conn, 1701, AwaitingKind::DeleteConfirmation).await.expect("take"),
        None
    );
    assert_eq!(conversation::take(&mut conn, 1701, AwaitingKind::Edit).await.expect("take"), Some(editing));
    assert_eq!(conversation::take(&mut conn, 1701, AwaitingKind::Edit).await.expect("take"), None);
    let deleting = Awaiting::DeleteConfirmation;
    conversation::set(&mut conn, 1701, &deleting, Duration::from_secs(0)).await.expect("set");
    assert_eq!(conversation::get(&mut conn, 1701).await.expect("get"), None, "expired at once");
    assert_eq!(
        conversation::take(&mut conn, 1701, AwaitingKind::DeleteConfirmation).await.expect("take"),
        None
    );
    conversation::set(&mut conn, 1701, &deleting, Duration::from_secs(600)).await.expect("set");
    conversation::clear(&mut conn, 1701).await.expect("clear");
    assert_eq!(conversation::get(&mut conn, 1701).await.expect("get"), None);
}

#[tokio::test]
async fn a_conversation_state_is_taken_once_however_many_take_it_at_once() {
    use nanobanana::bot::conversation;
    use nanobanana::domain::{Awaiting, AwaitingKind};
    let db = TestDb::heavy(10).await;
    db.user_with(1701, 10).await;
    let mut conn = db.conn().await;
    let editing = Awaiting::Edit { generation: uuid::Uuid::now_v7() };
    conversation::set(&mut conn, 1701, &editing, Duration::from_secs(60)).await.expect("set");
    // Another state's kind takes nothing and leaves this one.
    assert_eq!(conversation::take(&mut conn, 1701, AwaitingKind::ReceiptContact).await.expect("take"), None);
    drop(conn);
    let takers = (0..8).map(|_| {
        let pool = db.pool.clone();
        tokio::spawn(async move {
            let mut tx = pool.begin().await.expect("begin");
            let taken = conversation::take(&mut tx, 1701, AwaitingKind::Edit).await.expect("take");
            tx.commit().await.expect("commit");
            taken
        })
    });
    let taken: Vec<_> = join_all(takers).await.into_iter().flatten().flatten().collect();
    assert_eq!(taken, [editing], "exactly one taker sees the state");
    assert_eq!(conversation::get(&mut *db.conn().await, 1701).await.expect("get"), None);
}
