//! Editing as a conversation (issue 18, DESIGN §10): a reply to a picture, or ✏️ and a text,
//! continues the Gemini conversation that made it — the fake Gemini gets the earlier turns,
//! the model turns with the signatures it returned, and refuses a model turn without them.

use fakes::telegram::ChatRecord;
use serde_json::json;
use uuid::Uuid;

use crate::support::{fast, wait, TestApp, WAIT};

const USER: i64 = 1_801;
const OTHER: i64 = 1_802;

fn photos(chat: &ChatRecord) -> Vec<fakes::telegram::BotMessage> {
    chat.messages.iter().filter(|m| m.kind == "photo").cloned().collect()
}

async fn generation_for(p: &TestApp, user: i64, prompt: &str) -> (Uuid, Option<Uuid>) {
    wait::until(format!("a generation for {prompt:?}"), WAIT, || async {
        let found: Option<(Uuid, Option<Uuid>)> =
            sqlx::query_as("SELECT id, parent_id FROM generations WHERE user_id = $1 AND prompt = $2")
                .bind(user)
                .bind(prompt)
                .fetch_optional(&p.db.pool)
                .await
                .expect("generation");
        found.ok_or("none yet")
    })
    .await
}

/// The n-th photo of the user's chat, once delivered and its message id recorded.
async fn photo(p: &TestApp, user: i64, n: usize) -> fakes::telegram::BotMessage {
    let chat = p.chat(user, |c| photos(c).len() > n).await;
    let photo = photos(&chat)[n].clone();
    let sql = format!(
        "SELECT COUNT(*) FROM outbox WHERE chat_id = {user} AND message_id = {} AND delivers IS NOT NULL",
        photo.message_id
    );
    p.until("the delivery's message id recorded", &sql, 1).await;
    photo
}

#[tokio::test]
async fn an_edit_chain_of_three_sends_the_signed_model_turns_and_only_the_owners_reply_edits() {
    let p = TestApp::builder().start().await;
    p.funded(USER, 100).await;
    p.funded(OTHER, 100).await;
    let w = p.start_worker(fast()).await;

    // 1. A picture.
    let first = p.prompt(USER, "en", "a red bicycle by a lake").await;
    p.wait_status(first, "succeeded").await;
    let first_photo = photo(&p, USER, 0).await;

    // 2. A reply to it edits it.
    p.tg.send_reply(USER, "make the sky darker", first_photo.message_id).expect("reply");
    let (second, parent) = generation_for(&p, USER, "make the sky darker").await;
    assert_eq!(parent, Some(first), "a reply to a picture edits it");
    p.wait_status(second, "succeeded").await;
    let second_photo = photo(&p, USER, 1).await;

    // 3. ✏️ on the edit, then the instruction: an edit of the edit.
    p.press(USER, second_photo.message_id, &format!("edit:{second}")).await;
    p.text(USER, "en", "now add a moon");
    let (third, parent) = generation_for(&p, USER, "now add a moon").await;
    assert_eq!(parent, Some(second));
    p.wait_status(third, "succeeded").await;

    let calls = p.gemini.requests();
    let call = |prompt: &str| {
        calls.iter().find(|r| r.turns.last().is_some_and(|t| t.texts == [prompt])).expect(prompt).clone()
    };
    let (one, two, three) =
        (call("a red bicycle by a lake"), call("make the sky darker"), call("now add a moon"));
    assert_eq!(one.turns.len(), 1, "a new picture is one turn");
    let roles: Vec<&str> = three.turns.iter().map(|t| t.role.as_str()).collect();
    assert_eq!(roles, ["user", "model", "user", "model", "user"], "the whole chain, then the instruction");
    assert_eq!(three.turns[0].texts, ["a red bicycle by a lake"]);
    assert_eq!(three.turns[2].texts, ["make the sky darker"]);
    // The model turns as Gemini returned them: every signature it gave, thoughts dropped.
    assert!(!one.signatures.is_empty() && !two.signatures.is_empty());
    assert_eq!(three.turns[1].signatures, one.signatures, "the first model turn's signatures");
    assert_eq!(three.turns[3].signatures, two.signatures, "the second model turn's signatures");
    assert_eq!(two.turns[1].signatures, one.signatures);
    for turn in three.turns.iter().filter(|t| t.role == "model") {
        assert_eq!((turn.images.len(), turn.thoughts), (1, 0), "{turn:?}");
    }
    // The bot never sent a model turn the fake refused.
    assert!(calls.iter().all(|r| r.status == Some(200)), "{calls:#?}");
    // Each edit is charged like a new picture of that model and size.
    assert_eq!(p.db.balance(USER).await, (70, 0));
    let kept = p.count("SELECT COUNT(*) FROM generations WHERE turn_key IS NOT NULL").await;
    assert_eq!(kept, 3, "each picture keeps its conversation in storage");

    // A reply from another user to this user's picture (by its message id) is a plain prompt,
    // and so is a reply to a message that is not a picture.
    let update = json!({"message": {"message_id": 9_001, "date": 0, "text": "steal it",
        "from": {"id": OTHER, "is_bot": false, "first_name": "O", "language_code": "en"},
        "chat": {"id": OTHER, "type": "private"},
        "reply_to_message": {"message_id": first_photo.message_id, "chat": {"id": USER, "type": "private"}}}});
    p.tg.post_update(update).expect("raw update");
    let (stolen, parent) = generation_for(&p, OTHER, "steal it").await;
    assert_eq!(parent, None, "another user's picture is not theirs to edit");
    let welcome = p.tg.chat(USER).expect("chat").messages[0].message_id;
    p.tg.send_reply(USER, "a plain castle", welcome).expect("reply to a text");
    let (plain, parent) = generation_for(&p, USER, "a plain castle").await;
    assert_eq!(parent, None, "a reply to a message that is not a picture is a prompt");
    p.wait_status(stolen, "succeeded").await;
    p.wait_status(plain, "succeeded").await;
    for prompt in ["steal it", "a plain castle"] {
        let seen = p.gemini.requests().into_iter().find(|r| r.prompt == prompt).expect(prompt);
        assert_eq!(seen.turns.len(), 1, "{prompt}: one turn");
    }

    // /deleteme erases the kept conversations with the pictures.
    let conversation = p.storage.join(format!("generations/{third}/conversation.json"));
    assert!(conversation.exists(), "{conversation:?}");
    p.command(USER, "en", "deleteme");
    let asked = p.wait_text(USER, "Delete your data").await;
    p.press(USER, asked.message_id, "del:yes").await;
    p.until(
        "the user's pictures erased",
        &format!("SELECT COUNT(*) FROM generations WHERE user_id = {USER} AND erased_at IS NULL"),
        0,
    )
    .await;
    assert!(!conversation.exists(), "the conversation went with the pictures");
    assert_eq!(
        p.count("SELECT COUNT(*) FROM generations WHERE turn_key IS NOT NULL AND user_id = 1801").await,
        0
    );
    TestApp::stop_worker(w).await;
    p.finish().await;
}

#[tokio::test]
async fn the_fake_gemini_refuses_a_model_turn_without_its_signature_in_googles_shape() {
    let fake = fakes::FakeGemini::start(fakes::GeminiConfig { small: true, ..Default::default() })
        .await
        .expect("fake gemini");
    let http = reqwest::Client::new();
    let url = format!("{}/v1beta/models/gemini-3-pro-image:generateContent", fake.base_url());
    let call =
        |body: serde_json::Value| http.post(&url).header("x-goog-api-key", fake.api_key()).json(&body).send();
    let user = json!({"role": "user", "parts": [{"text": "a lighthouse"}]});
    let answer: serde_json::Value =
        call(json!({"contents": [user]})).await.expect("call").json().await.expect("json");
    let parts = answer["candidates"][0]["content"]["parts"].as_array().expect("parts").clone();
    let turn: Vec<serde_json::Value> = parts.into_iter().filter(|p| p["thought"] != true).collect();
    let edit = |model: Vec<serde_json::Value>| {
        json!({"contents": [user, {"role": "model", "parts": model},
            {"role": "user", "parts": [{"text": "paint it red"}]}]})
    };
    let signed = call(edit(turn.clone())).await.expect("call");
    assert_eq!(signed.status(), 200, "the model turn as returned is taken");
    let unsigned: Vec<serde_json::Value> = turn
        .iter()
        .map(|p| {
            let mut p = p.clone();
            if let Some(part) = p.as_object_mut().filter(|o| o.contains_key("inlineData")) {
                part.remove("thoughtSignature");
            }
            p
        })
        .collect();
    let refused = call(edit(unsigned)).await.expect("call");
    assert_eq!(refused.status(), 400);
    let body: serde_json::Value = refused.json().await.expect("json");
    assert_eq!(body["error"]["code"], 400);
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
    let message = body["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("missing a thought_signature"), "{message}");
    let recorded = fake.requests();
    assert_eq!(recorded.len(), 3);
    assert_eq!((recorded[1].status, recorded[2].status), (Some(200), Some(400)));
    let roles: Vec<&str> = recorded[1].turns.iter().map(|t| t.role.as_str()).collect();
    assert_eq!(roles, ["user", "model", "user"]);
    assert_eq!(recorded[1].turns[1].signatures, recorded[0].signatures, "what it returned came back");
}

#[tokio::test]
async fn an_edit_that_cannot_continue_the_conversation_starts_from_the_last_picture_and_says_so() {
    const USER: i64 = 1_811;
    let p = TestApp::builder().start().await;
    p.funded(USER, 100).await;
    let w = p.start_worker(fast()).await;
    let first = p.prompt(USER, "en", "a green teapot").await;
    p.wait_status(first, "succeeded").await;
    let picture = photo(&p, USER, 0).await;
    // Its conversation is gone (kept before conversations were, or past the chain's bound).
    sqlx::query("UPDATE generations SET turn_key = NULL WHERE id = $1")
        .bind(first)
        .execute(&p.db.pool)
        .await
        .expect("forget the conversation");
    p.tg.send_reply(USER, "make it purple", picture.message_id).expect("reply");
    let (edit, parent) = generation_for(&p, USER, "make it purple").await;
    assert_eq!(parent, Some(first));
    p.wait_status(edit, "succeeded").await;
    p.wait_text(USER, "starting from the last picture").await;
    let call = p.gemini.requests().into_iter().find(|r| r.prompt == "make it purple").expect("call");
    assert_eq!(call.turns.len(), 1, "a fresh start: one turn");
    let result_key: String = sqlx::query_scalar("SELECT result_key FROM generations WHERE id = $1")
        .bind(first)
        .fetch_one(&p.db.pool)
        .await
        .expect("result key");
    let original = std::fs::read(p.storage.join(result_key)).expect("the stored original");
    assert_eq!(call.references.len(), 1);
    assert_eq!(call.references[0].size, original.len(), "the last picture as a plain reference");
    assert_eq!(p.db.balance(USER).await, (80, 0));
    TestApp::stop_worker(w).await;
    p.finish().await;
}
