//! Telegram: photos and documents (multipart upload, file_id reuse, by URL, limits), albums
//! sent by the bot, getFile and download, edits and deletes.

use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::support::*;
use fakes::common::image::{render_png, seed_of};

fn sha_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

async fn multipart(tg: &fakes::FakeTelegram, method: &str, form: Form) -> (u16, Value) {
    let response = client().post(tg.method_url(method)).multipart(form).send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

#[tokio::test]
async fn a_user_photo_can_be_fetched_with_get_file() {
    let tg = start_telegram().await;
    let sent = tg
        .send_photo(50, &fakes::telegram::ImageSpec { caption: Some("a cat".into()), ..Default::default() })
        .expect("photo");
    let update = call_ok(&tg, "getUpdates", json!({})).await[0].clone();
    let sizes = update["message"]["photo"].as_array().expect("sizes").clone();
    assert_eq!(sizes.len(), 2, "a thumbnail and the full size");
    let largest = sizes.last().expect("largest");
    assert_eq!((largest["width"].clone(), largest["height"].clone()), (json!(640), json!(480)));
    assert_eq!(largest["file_id"], sent.file_id.clone().expect("file id").as_str());
    assert_eq!(update["message"]["caption"], "a cat");
    let file = call_ok(&tg, "getFile", json!({"file_id": largest["file_id"]})).await;
    let url =
        format!("{}/file/bot{}/{}", tg.base_url(), tg.token(), file["file_path"].as_str().expect("path"));
    let bytes = client().get(&url).send().await.expect("download").bytes().await.expect("bytes");
    assert_eq!(bytes.len() as u64, file["file_size"].as_u64().expect("size"));
    assert_eq!(Some(bytes.clone()), tg.file_bytes(largest["file_id"].as_str().expect("id")));
    let wrong = client().get(url.replace(tg.token(), "1:wrong")).send().await.expect("download");
    assert_eq!(wrong.status().as_u16(), 404);
}

#[tokio::test]
async fn bot_photos_are_recorded_with_size_and_hash_and_reusable() {
    let tg = start_telegram().await;
    tg.send_text(51, "hi").expect("user writes");
    let png = render_png(300, 200, &seed_of(&[b"result"]));
    let form = Form::new()
        .text("chat_id", "51")
        .text("caption", "Your image")
        .part("photo", Part::bytes(png.clone()).file_name("result.png").mime_str("image/png").expect("mime"));
    let (status, body) = multipart(&tg, "sendPhoto", form).await;
    assert_eq!(status, 200, "{body}");
    let file_id = body["result"]["photo"].as_array().and_then(|s| s.last()).expect("size")["file_id"].clone();

    let again = call_ok(&tg, "sendPhoto", json!({"chat_id": 51, "photo": file_id})).await;
    assert_eq!(again["photo"].as_array().and_then(|s| s.last()).expect("size")["file_id"], file_id);
    let unknown = call(&tg, "sendPhoto", json!({"chat_id": 51, "photo": "nope"})).await;
    assert_error(&unknown, 400, "Bad Request: wrong file identifier/HTTP URL specified");

    let chat = tg.chat(51).expect("chat");
    let photo = chat.messages.iter().find(|m| m.kind == "photo").expect("photo");
    let record = photo.file.clone().expect("file record");
    assert_eq!(record.size, png.len());
    assert_eq!(record.sha256, sha_hex(&png));
    assert_eq!((record.width, record.height), (300, 200));
    assert_eq!(photo.caption(), Some("Your image"));
}

#[tokio::test]
async fn photos_by_url_and_photo_limits() {
    let tg = start_telegram().await;
    tg.send_text(52, "hi").expect("user writes");
    let sent = tg.send_photo(52, &Default::default()).expect("user photo");
    let file = call_ok(&tg, "getFile", json!({"file_id": sent.file_id})).await;
    let url =
        format!("{}/file/bot{}/{}", tg.base_url(), tg.token(), file["file_path"].as_str().expect("path"));
    let by_url = call_ok(&tg, "sendPhoto", json!({"chat_id": 52, "photo": url})).await;
    assert!(by_url["photo"].is_array());
    let missing =
        call(&tg, "sendPhoto", json!({"chat_id": 52, "photo": format!("{}/nothing.png", tg.base_url())}))
            .await;
    assert_error(&missing, 400, "Bad Request: failed to get HTTP URL content");

    let thin = render_png(10, 300, &seed_of(&[b"thin"]));
    let form = Form::new().text("chat_id", "52").part("photo", Part::bytes(thin).file_name("t.png"));
    assert_error(&multipart(&tg, "sendPhoto", form).await, 400, "Bad Request: PHOTO_INVALID_DIMENSIONS");
    let text = Form::new()
        .text("chat_id", "52")
        .part("photo", Part::bytes(b"not an image".to_vec()).file_name("x.png"));
    assert_error(&multipart(&tg, "sendPhoto", text).await, 400, "Bad Request: IMAGE_PROCESS_FAILED");
    let caption = "c".repeat(1025);
    let long =
        call(&tg, "sendPhoto", json!({"chat_id": 52, "photo": sent.file_id, "caption": caption})).await;
    assert_error(&long, 400, "Bad Request: message caption is too long");
}

#[tokio::test]
async fn documents_and_media_groups() {
    let tg = start_telegram().await;
    tg.send_text(53, "hi").expect("user writes");
    let png = render_png(64, 64, &seed_of(&[b"doc"]));
    let form = Form::new()
        .text("chat_id", "53")
        .part("document", Part::bytes(png.clone()).file_name("original.png"));
    let (status, body) = multipart(&tg, "sendDocument", form).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["document"]["file_name"], "original.png");
    assert_eq!(body["result"]["document"]["mime_type"], "image/png");
    assert_eq!(body["result"]["document"]["file_size"], png.len());

    let a = render_png(80, 60, &seed_of(&[b"a"]));
    let b = render_png(60, 80, &seed_of(&[b"b"]));
    let media = json!([{"type": "photo", "media": "attach://a", "caption": "first"}, {"type": "photo", "media": "attach://b"}]);
    let form = Form::new()
        .text("chat_id", "53")
        .text("media", media.to_string())
        .part("a", Part::bytes(a).file_name("a.png"))
        .part("b", Part::bytes(b.clone()).file_name("b.png"));
    let (status, body) = multipart(&tg, "sendMediaGroup", form).await;
    assert_eq!(status, 200, "{body}");
    let messages = body["result"].as_array().expect("messages");
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["media_group_id"], messages[1]["media_group_id"]);
    let one =
        call(&tg, "sendMediaGroup", json!({"chat_id": 53, "media": [{"type": "photo", "media": "x"}]})).await;
    assert_eq!(one.0, 400);
    let chat = tg.chat(53).expect("chat");
    assert_eq!(chat.messages.last().and_then(|m| m.file.clone()).map(|f| f.sha256), Some(sha_hex(&b)));
}

#[tokio::test]
async fn edits_follow_telegram_rules() {
    let tg = start_telegram().await;
    tg.send_text(54, "hi").expect("user writes");
    let keyboard = json!({"inline_keyboard": [[{"text": "Cancel", "callback_data": "cancel"}]]});
    let sent =
        call_ok(&tg, "sendMessage", json!({"chat_id": 54, "text": "Queued", "reply_markup": keyboard})).await;
    let id = sent["message_id"].clone();
    let same = call(
        &tg,
        "editMessageText",
        json!({"chat_id": 54, "message_id": id, "text": "Queued", "reply_markup": keyboard}),
    )
    .await;
    assert_eq!(same.0, 400);
    assert!(same.1["description"]
        .as_str()
        .expect("text")
        .starts_with("Bad Request: message is not modified"));
    let edited =
        call_ok(&tg, "editMessageText", json!({"chat_id": 54, "message_id": id, "text": "Working"})).await;
    assert_eq!(edited["text"], "Working");
    assert!(edited.get("reply_markup").is_none(), "an edit without reply_markup removes the keyboard");
    assert!(edited["edit_date"].is_i64());
    call_ok(
        &tg,
        "editMessageReplyMarkup",
        json!({"chat_id": 54, "message_id": id, "reply_markup": keyboard}),
    )
    .await;
    let missing = call(&tg, "editMessageText", json!({"chat_id": 54, "message_id": 999, "text": "x"})).await;
    assert_error(&missing, 400, "Bad Request: message to edit not found");
    call_ok(&tg, "deleteMessage", json!({"chat_id": 54, "message_id": id})).await;
    let twice = call(&tg, "deleteMessage", json!({"chat_id": 54, "message_id": id})).await;
    assert_error(&twice, 400, "Bad Request: message to delete not found");

    let chat = tg.chat(54).expect("chat");
    let message = &chat.messages[0];
    assert!(message.deleted);
    assert_eq!(message.edits.len(), 2);
    assert_eq!(message.edits[0]["text"], "Queued");
    let methods: Vec<&str> = chat.events.iter().map(|e| e.method.as_str()).collect();
    assert_eq!(methods, ["sendMessage", "editMessageText", "editMessageReplyMarkup", "deleteMessage"]);
}
