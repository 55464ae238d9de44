//! Telegram: acting as a user through the control API (HTTP) and the handle: commands,
//! button presses, blocking, albums, Stars payments, raw updates.

use std::future::ready;

use fakes::common::wait::{wait_until, Recheck};
use serde_json::{json, Value};

use crate::support::*;

async fn updates(tg: &fakes::FakeTelegram) -> Vec<Value> {
    call_ok(tg, "getUpdates", json!({})).await.as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn control_api_acts_as_a_user_and_reads_the_chat() {
    let tg = start_telegram().await;
    let base = tg.base_url();
    let (status, sent) = post_json(
        &format!("{base}/_fake/users/77/command"),
        &json!({"command": "start", "args": "ref_1", "language_code": "ru"}),
    )
    .await;
    assert_eq!(status, 200, "{sent}");
    let update = &updates(&tg).await[0];
    assert_eq!(update["update_id"], sent["update_id"]);
    assert_eq!(update["message"]["text"], "/start ref_1");
    assert_eq!(update["message"]["entities"][0], json!({"type": "bot_command", "offset": 0, "length": 6}));
    assert_eq!(update["message"]["from"]["language_code"], "ru");

    call_ok(&tg, "sendChatAction", json!({"chat_id": 77, "action": "upload_photo"})).await;
    call_ok(&tg, "sendMessage", json!({"chat_id": 77, "text": "welcome"})).await;
    let (status, chat) = get_json(&format!("{base}/_fake/chats/77")).await;
    assert_eq!(status, 200);
    assert_eq!(chat["chat_actions"], json!(["upload_photo"]));
    assert_eq!(chat["messages"][0]["message"]["text"], "welcome");
    assert_eq!(get_json(&format!("{base}/_fake/chats/78")).await.0, 404);
    let (_, list) = get_json(&format!("{base}/_fake/chats")).await;
    assert_eq!(list[0]["chat_id"], 77);
    assert_eq!(list[0]["messages"], 1);
}

#[tokio::test]
async fn button_press_becomes_a_callback_query_answered_once() {
    let tg = start_telegram().await;
    tg.send_text(3, "hi").expect("user writes");
    let keyboard = json!({"inline_keyboard": [[{"text": "Pro", "callback_data": "model:pro"}]]});
    let message =
        call_ok(&tg, "sendMessage", json!({"chat_id": 3, "text": "Pick", "reply_markup": keyboard})).await;
    let message_id = message["message_id"].as_i64().expect("id");
    assert!(tg.press_button(3, message_id, "model:flash").is_err(), "no such button");
    let press = tg.press_button(3, message_id, "model:pro").expect("press");
    let all = updates(&tg).await;
    let query = &all.last().expect("update")["callback_query"];
    assert_eq!(query["data"], "model:pro");
    assert_eq!(query["message"]["message_id"], message_id);
    let query_id = press.query_id.expect("query id");
    assert_eq!(query["id"], query_id.as_str());
    call_ok(&tg, "answerCallbackQuery", json!({"callback_query_id": query_id, "text": "ok"})).await;
    let again = call(&tg, "answerCallbackQuery", json!({"callback_query_id": query_id})).await;
    assert_error(
        &again,
        400,
        "Bad Request: query is too old and response timeout expired or query ID is invalid",
    );
    let chat = tg.chat(3).expect("chat");
    assert!(chat.events.iter().any(|e| e.method == "answerCallbackQuery" && e.detail["text"] == "ok"));
}

#[tokio::test]
async fn blocking_the_bot_sends_my_chat_member_and_sends_fail_with_403() {
    let tg = start_telegram().await;
    tg.send_text(4, "hi").expect("user writes");
    let (status, _) = post_json(&format!("{}/_fake/users/4/block", tg.base_url()), &json!({})).await;
    assert_eq!(status, 200);
    let last = updates(&tg).await.pop().expect("update");
    assert_eq!(last["my_chat_member"]["new_chat_member"]["status"], "kicked");
    assert_eq!(last["my_chat_member"]["old_chat_member"]["status"], "member");
    let answer = call(&tg, "sendMessage", json!({"chat_id": 4, "text": "still there?"})).await;
    assert_error(&answer, 403, "Forbidden: bot was blocked by the user");
    tg.unblock(4).expect("unblock");
    call_ok(&tg, "sendMessage", json!({"chat_id": 4, "text": "welcome back"})).await;
}

#[tokio::test]
async fn stars_payment_completes_only_after_an_ok_answer_and_can_be_refunded() {
    let tg = start_telegram().await;
    tg.send_text(6, "buy").expect("user writes");
    let bad = call(
        &tg,
        "sendInvoice",
        json!({"chat_id": 6, "title": "t", "description": "d", "payload": "p",
        "provider_token": "tok", "currency": "XTR", "prices": [{"label": "x", "amount": 50}]}),
    )
    .await;
    assert_error(&bad, 400, "Bad Request: PAYMENT_PROVIDER_INVALID");
    let invoice = call_ok(&tg, "sendInvoice", json!({"chat_id": 6, "title": "100 credits", "description": "Pack",
        "payload": "topup-1", "currency": "XTR", "prices": [{"label": "100 credits", "amount": 50}], "start_parameter": "buy"})).await;
    assert_eq!(invoice["invoice"]["total_amount"], 50);
    let recorded =
        tg.chat(6).expect("chat").messages.into_iter().find(|m| m.kind == "invoice").expect("invoice");
    assert_eq!(recorded.invoice_payload.as_deref(), Some("topup-1"));
    let paying = tg.pay_invoice(6, invoice["message_id"].as_i64().expect("id")).expect("pay");
    let query = updates(&tg).await.pop().expect("update")["pre_checkout_query"].clone();
    assert_eq!(query["invoice_payload"], "topup-1");
    assert_eq!(query["currency"], "XTR");
    assert_eq!(query["id"], paying.query_id.clone().expect("query id").as_str());
    assert_eq!(tg.payments()[0].status, "pending");

    call_ok(&tg, "answerPreCheckoutQuery", json!({"pre_checkout_query_id": query["id"], "ok": true})).await;
    let paid = updates(&tg).await.pop().expect("update")["message"]["successful_payment"].clone();
    assert_eq!(paid["total_amount"], 50);
    assert_eq!(paid["invoice_payload"], "topup-1");
    let charge = paid["telegram_payment_charge_id"].as_str().expect("charge").to_string();
    assert_eq!(tg.payments()[0].status, "paid");

    call_ok(&tg, "refundStarPayment", json!({"user_id": 6, "telegram_payment_charge_id": charge})).await;
    let again =
        call(&tg, "refundStarPayment", json!({"user_id": 6, "telegram_payment_charge_id": charge})).await;
    assert_error(&again, 400, "Bad Request: CHARGE_ALREADY_REFUNDED");
    let refunded = updates(&tg).await.pop().expect("update");
    assert_eq!(refunded["message"]["refunded_payment"]["telegram_payment_charge_id"], charge.as_str());
}

#[tokio::test]
async fn a_rejected_pre_checkout_sends_no_payment() {
    let tg = start_telegram().await;
    tg.send_text(8, "buy").expect("user writes");
    let invoice = call_ok(
        &tg,
        "sendInvoice",
        json!({"chat_id": 8, "title": "t", "description": "d",
        "payload": "p", "currency": "XTR", "prices": [{"label": "x", "amount": 1}]}),
    )
    .await;
    let paying = tg.pay_invoice(8, invoice["message_id"].as_i64().expect("id")).expect("pay");
    let id = paying.query_id.expect("id");
    let missing =
        call(&tg, "answerPreCheckoutQuery", json!({"pre_checkout_query_id": id, "ok": false})).await;
    assert_eq!(missing.0, 400, "ok=false needs an error_message");
    call_ok(
        &tg,
        "answerPreCheckoutQuery",
        json!({"pre_checkout_query_id": id, "ok": false, "error_message": "sold out"}),
    )
    .await;
    let all = updates(&tg).await;
    assert!(all.iter().all(|u| u["message"].get("successful_payment").is_none()));
    assert_eq!(tg.payments()[0].status, "rejected");
}

#[tokio::test]
async fn albums_share_a_media_group_id_and_raw_updates_pass_through() {
    let tg = start_telegram().await;
    let items = json!({"items": [{"caption": "two cats"}, {"width": 100, "height": 80}, {}]});
    let (status, sent) = post_json(&format!("{}/_fake/users/12/album", tg.base_url()), &items).await;
    assert_eq!(status, 200, "{sent}");
    let all = updates(&tg).await;
    assert_eq!(all.len(), 3);
    let group = all[0]["message"]["media_group_id"].clone();
    assert!(group.is_string());
    assert!(all.iter().all(|u| u["message"]["media_group_id"] == group));
    assert_eq!(all[0]["message"]["caption"], "two cats");
    assert!(all[1]["message"].get("caption").is_none());
    let sizes = all[1]["message"]["photo"].as_array().expect("sizes");
    assert_eq!(
        sizes.last().map(|s| (s["width"].clone(), s["height"].clone())),
        Some((json!(100), json!(80)))
    );

    let raw = json!({"message": {"message_id": 1, "date": 0, "chat": {"id": 12, "type": "private"}, "sticker": {"file_id": "x"}}});
    let (status, body) = post_json(&format!("{}/_fake/updates", tg.base_url()), &raw).await;
    assert_eq!(status, 200);
    let last = updates(&tg).await.pop().expect("update");
    assert_eq!(last["update_id"], body["update_id"]);
    assert_eq!(last["message"]["sticker"]["file_id"], "x");
}

#[tokio::test]
async fn an_unanswered_pre_checkout_query_expires() {
    let config = fakes::TelegramConfig {
        pre_checkout_timeout: std::time::Duration::from_millis(50),
        ..Default::default()
    };
    let tg = fakes::FakeTelegram::start(config).await.expect("start");
    tg.send_text(15, "buy").expect("user writes");
    let invoice = call_ok(
        &tg,
        "sendInvoice",
        json!({"chat_id": 15, "title": "t", "description": "d",
        "payload": "p", "currency": "XTR", "prices": [{"label": "x", "amount": 1}]}),
    )
    .await;
    let paying = tg.pay_invoice(15, invoice["message_id"].as_i64().expect("id")).expect("pay");
    // Poll until the 50 ms answer window has passed.
    let every = Recheck::Every(std::time::Duration::from_millis(5));
    let expired = || ready((tg.payments()[0].status != "pending").then_some(()));
    wait_until(WAIT, "the query to expire", every, expired).await.expect("the query never expired");
    assert_eq!(tg.payments()[0].status, "expired");
    let late =
        call(&tg, "answerPreCheckoutQuery", json!({"pre_checkout_query_id": paying.query_id, "ok": true}))
            .await;
    assert_error(
        &late,
        400,
        "Bad Request: query is too old and response timeout expired or query ID is invalid",
    );
    let all = updates(&tg).await;
    assert!(all.iter().all(|u| u["message"].get("successful_payment").is_none()));
}

#[tokio::test]
async fn files_uploaded_through_the_control_api_can_be_sent_by_file_id() {
    let tg = start_telegram().await;
    tg.send_text(16, "hi").expect("user writes");
    let png = fakes::common::image::render_png(50, 40, &fakes::common::image::seed_of(&[b"upload"]));
    let body = json!({"data_base64": fakes::common::b64::encode(&png), "kind": "photo"});
    let (status, uploaded) = post_json(&format!("{}/_fake/files", tg.base_url()), &body).await;
    assert_eq!(status, 200, "{uploaded}");
    let sent = call_ok(&tg, "sendPhoto", json!({"chat_id": 16, "photo": uploaded["file_id"]})).await;
    let largest = sent["photo"].as_array().and_then(|s| s.last()).expect("size").clone();
    assert_eq!((largest["width"].clone(), largest["height"].clone()), (json!(50), json!(40)));
    let (status, _) = post_json(
        &format!("{}/_fake/files", tg.base_url()),
        &json!({"data_base64": "aGVsbG8=", "kind": "photo"}),
    )
    .await;
    assert_eq!(status, 400, "text is not a photo");
}
