//! Telegram: tokens, envelope, parameter encodings, text limits, faults, pacing, getUpdates.

use serde_json::json;

use crate::support::*;
use fakes::telegram::{Fault, FaultKind};

#[tokio::test]
async fn tokens_and_methods_are_checked_like_telegram() {
    let tg = start_telegram().await;
    let me = call_ok(&tg, "getMe", json!({})).await;
    assert_eq!(me["is_bot"], true);
    assert_eq!(me["id"], 123456789);
    assert_eq!(me["username"], "nanobanana_test_bot");

    let base = tg.base_url();
    let wrong = post_json(&format!("{base}/bot123456789:WRONG/getMe"), &json!({})).await;
    assert_error(&wrong, 401, "Unauthorized");
    let malformed = post_json(&format!("{base}/botnotatoken/getMe"), &json!({})).await;
    assert_error(&malformed, 404, "Not Found");
    assert_error(&call(&tg, "noSuchMethod", json!({})).await, 404, "Not Found");
    let bare = post_json(&format!("{base}/bot{}/", tg.token()), &json!({})).await;
    assert_error(&bare, 404, "Not Found");
    // Method names are case-insensitive.
    assert_eq!(call_ok(&tg, "getme", json!({})).await["id"], 123456789);
}

#[tokio::test]
async fn send_message_validates_chat_text_and_keyboard() {
    let tg = start_telegram().await;
    assert_error(
        &call(&tg, "sendMessage", json!({"chat_id": 42, "text": "hi"})).await,
        400,
        "Bad Request: chat not found",
    );
    tg.send_text(42, "hello").expect("user writes");
    assert_error(
        &call(&tg, "sendMessage", json!({"text": "hi"})).await,
        400,
        "Bad Request: chat_id is empty",
    );
    assert_error(
        &call(&tg, "sendMessage", json!({"chat_id": 42})).await,
        400,
        "Bad Request: message text is empty",
    );
    let long = "я".repeat(4097);
    assert_error(
        &call(&tg, "sendMessage", json!({"chat_id": 42, "text": long})).await,
        400,
        "Bad Request: message is too long",
    );
    let bad_keyboard = json!({"inline_keyboard": [[{"text": "x", "callback_data": "d".repeat(65)}]]});
    let answer =
        call(&tg, "sendMessage", json!({"chat_id": 42, "text": "hi", "reply_markup": bad_keyboard})).await;
    assert_error(&answer, 400, "Bad Request: BUTTON_DATA_INVALID");
    let html = call(&tg, "sendMessage", json!({"chat_id": 42, "text": "<b>x", "parse_mode": "HTML"})).await;
    assert_error(
        &html,
        400,
        "Bad Request: can't parse entities: Can't find end tag corresponding to start tag \"b\"",
    );

    let keyboard = json!({"inline_keyboard": [[{"text": "Buy", "callback_data": "buy:1"}]]});
    let sent = call_ok(
        &tg,
        "sendMessage",
        json!({"chat_id": 42, "text": "<b>Pick</b>", "parse_mode": "HTML", "reply_markup": keyboard}),
    )
    .await;
    assert_eq!(sent["chat"]["id"], 42);
    assert_eq!(sent["message_id"], 2, "message ids are shared with the user's messages");
    assert_eq!(sent["reply_markup"], keyboard);

    let chat = tg.chat(42).expect("chat exists");
    assert_eq!(chat.messages.len(), 1);
    assert_eq!(chat.messages[0].text(), Some("Pick"), "Telegram stores the parsed text");
    assert_eq!(chat.messages[0].message["entities"][0]["type"], "bold");
    assert_eq!(chat.messages[0].callback_data(), vec!["buy:1".to_string()]);
}

#[tokio::test]
async fn form_and_query_parameters_are_accepted() {
    let tg = start_telegram().await;
    tg.send_text(7, "hi").expect("user writes");
    let keyboard = r#"{"inline_keyboard":[[{"text":"A","callback_data":"a"}]]}"#;
    let form = client()
        .post(tg.method_url("sendMessage"))
        .form(&[("chat_id", "7"), ("text", "form text"), ("reply_markup", keyboard)])
        .send()
        .await
        .expect("form request");
    let body: serde_json::Value = form.json().await.expect("json");
    assert_eq!(body["result"]["text"], "form text");
    assert_eq!(body["result"]["reply_markup"]["inline_keyboard"][0][0]["callback_data"], "a");
    let query = client()
        .get(format!("{}?chat_id=7&text=query%20text", tg.method_url("sendMessage")))
        .send()
        .await
        .expect("query request");
    let body: serde_json::Value = query.json().await.expect("json");
    assert_eq!(body["result"]["text"], "query text");
}

#[tokio::test]
async fn injected_faults_answer_with_telegram_errors_then_clear() {
    let tg = start_telegram().await;
    tg.send_text(5, "hi").expect("user writes");
    let fault = json!({"method": "sendMessage", "count": 2, "kind": "429", "retry_after": 7});
    let (status, _) = post_json(&format!("{}/_fake/faults", tg.base_url()), &fault).await;
    assert_eq!(status, 200);
    for _ in 0..2 {
        let answer = call(&tg, "sendMessage", json!({"chat_id": 5, "text": "x"})).await;
        assert_error(&answer, 429, "Too Many Requests: retry after 7");
        assert_eq!(answer.1["parameters"]["retry_after"], 7);
    }
    call_ok(&tg, "sendMessage", json!({"chat_id": 5, "text": "x"})).await;
    tg.inject_fault(Fault {
        method: "*".into(),
        count: 1,
        kind: FaultKind::ServerError,
        retry_after: None,
        processed: false,
    });
    assert_error(&call(&tg, "getMe", json!({})).await, 500, "Internal Server Error");
    tg.inject_fault(Fault {
        method: "sendPhoto".into(),
        count: 1,
        kind: FaultKind::Blocked,
        retry_after: None,
        processed: false,
    });
    assert_error(&call(&tg, "sendPhoto", json!({})).await, 403, "Forbidden: bot was blocked by the user");
    assert_eq!(tg.chat(5).expect("chat").messages.len(), 1, "failed calls send nothing");
    tg.inject_fault(Fault {
        method: "sendMessage".into(),
        count: 1,
        kind: FaultKind::BadGateway,
        retry_after: None,
        processed: true,
    });
    let lost = call(&tg, "sendMessage", json!({"chat_id": 5, "text": "y"})).await;
    assert_error(&lost, 502, "Bad Gateway");
    assert_eq!(tg.chat(5).expect("chat").messages.len(), 2, "a processed fault carries the call out");
}

#[tokio::test]
async fn strict_pace_limits_all_chats_to_30_per_second() {
    let tg = start_telegram().await;
    for chat in 100..131 {
        tg.send_text(chat, "hi").expect("user writes");
    }
    tg.set_strict_pace(true);
    // 70 quick sends over 31 chats: at most 3 per chat (its burst), far above 30/s overall.
    // Sent at once, so even a slow machine cannot spread them over more than a second.
    let answers = futures_util::future::join_all(
        (0..70).map(|i| call(&tg, "sendMessage", json!({"chat_id": 100 + (i % 31), "text": "y"}))),
    )
    .await;
    let limited: Vec<&(u16, serde_json::Value)> = answers.iter().filter(|a| a.0 == 429).collect();
    assert!(!limited.is_empty(), "a burst far above 30/s is limited");
    assert!(limited.iter().all(|a| a.1["parameters"]["retry_after"] == 1));
    let passed = answers.iter().filter(|a| a.0 == 200).count();
    assert!((30..70).contains(&passed), "about the overall burst passes: {passed}");
}

#[tokio::test]
async fn strict_pace_answers_429_beyond_a_burst_per_chat() {
    let tg = start_telegram().await;
    tg.send_text(9, "hi").expect("user writes");
    tg.set_strict_pace(true);
    for _ in 0..3 {
        call_ok(&tg, "sendMessage", json!({"chat_id": 9, "text": "x"})).await;
    }
    let answer = call(&tg, "sendMessage", json!({"chat_id": 9, "text": "x"})).await;
    assert_eq!(answer.0, 429);
    assert!(answer.1["parameters"]["retry_after"].as_u64().is_some_and(|s| s >= 1));
}

#[tokio::test]
async fn get_updates_long_polls_and_confirms_with_offset() {
    let tg = start_telegram().await;
    let poll_url = tg.method_url("getUpdates");
    let poll = tokio::spawn(async move { post_json(&poll_url, &json!({"timeout": 20})).await });
    tg.wait_for_long_polls(1, WAIT).await.expect("the poll is waiting");
    let sent = tg.send_text(11, "wake up").expect("user writes");
    let (status, body) = poll.await.expect("poll task");
    assert_eq!(status, 200);
    let updates = body["result"].as_array().expect("array").clone();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0]["update_id"], sent.update_id);
    assert_eq!(updates[0]["message"]["text"], "wake up");
    assert_eq!(updates[0]["message"]["chat"]["type"], "private");

    tg.send_text(11, "second").expect("user writes");
    let again = call_ok(&tg, "getUpdates", json!({"offset": sent.update_id + 1})).await;
    assert_eq!(again.as_array().map(Vec::len), Some(1));
    assert_eq!(again[0]["message"]["text"], "second");
    assert_eq!(again[0]["update_id"], sent.update_id + 1, "update ids increase by one");
    let empty = call_ok(&tg, "getUpdates", json!({"offset": sent.update_id + 2, "timeout": 0})).await;
    assert_eq!(empty, json!([]));
}

#[tokio::test]
async fn a_newer_get_updates_terminates_the_waiting_one() {
    let tg = start_telegram().await;
    let poll_url = tg.method_url("getUpdates");
    let first = tokio::spawn(async move { post_json(&poll_url, &json!({"timeout": 30})).await });
    tg.wait_for_long_polls(1, WAIT).await.expect("the first poll is waiting");
    assert_eq!(call_ok(&tg, "getUpdates", json!({"timeout": 0})).await, json!([]));
    let first = first.await.expect("poll task");
    assert_error(
        &first,
        409,
        "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
    );
}

#[tokio::test]
async fn allowed_updates_filter_and_drop_pending_updates() {
    let tg = start_telegram().await;
    tg.send_text(13, "old").expect("user writes");
    call_ok(&tg, "deleteWebhook", json!({"drop_pending_updates": true})).await;
    assert_eq!(call_ok(&tg, "getUpdates", json!({})).await, json!([]));
    call_ok(&tg, "getUpdates", json!({"allowed_updates": ["callback_query"]})).await;
    tg.send_text(13, "filtered out").expect_err("a message is not an allowed update");
    call_ok(&tg, "getUpdates", json!({"allowed_updates": []})).await;
    tg.send_text(13, "back to defaults").expect("user writes");
    let updates = call_ok(&tg, "getUpdates", json!({})).await;
    assert_eq!(updates[0]["message"]["text"], "back to defaults");
}

#[tokio::test]
async fn replies_embed_the_message_and_a_missing_one_is_an_error() {
    let tg = start_telegram().await;
    let sent = tg.send_text(14, "a cat").expect("user writes");
    let message_id = sent.message_id.expect("id");
    let reply = call_ok(
        &tg,
        "sendMessage",
        json!({"chat_id": 14, "text": "queued",
        "reply_parameters": {"message_id": message_id}}),
    )
    .await;
    assert_eq!(reply["reply_to_message"]["text"], "a cat");
    let missing =
        call(&tg, "sendMessage", json!({"chat_id": 14, "text": "x", "reply_to_message_id": 999})).await;
    assert_error(&missing, 400, "Bad Request: message to be replied not found");
    let allowed = call_ok(
        &tg,
        "sendMessage",
        json!({"chat_id": 14, "text": "x",
        "reply_parameters": {"message_id": 999, "allow_sending_without_reply": true}}),
    )
    .await;
    assert!(allowed.get("reply_to_message").is_none());
}

#[tokio::test]
async fn a_user_who_blocked_the_bot_restarts_it_by_writing() {
    let tg = start_telegram().await;
    tg.send_text(9, "hi").expect("writes");
    tg.block(9).expect("blocks");
    tg.send_text(9, "back again").expect("writes again");
    let kinds: Vec<String> = tg
        .pending_updates()
        .iter()
        .filter_map(|u| u.as_object()?.keys().find(|k| *k != "update_id").cloned())
        .collect();
    assert_eq!(kinds, ["message", "my_chat_member", "my_chat_member", "message"]);
    let statuses: Vec<&str> = tg
        .pending_updates()
        .iter()
        .filter_map(|u| {
            u.pointer("/my_chat_member/new_chat_member/status").and_then(|s| s.as_str()).map(str::to_owned)
        })
        .map(|s| if s == "kicked" { "kicked" } else { "member" })
        .collect();
    assert_eq!(statuses, ["kicked", "member"]);
    assert!(!tg.chat(9).expect("chat").blocked, "sends work again");
}
