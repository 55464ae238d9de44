//! Styles and prompt examples (issue 18, DESIGN §10 "Styles"): a preset from `/styles` applies
//! its template to the next prompt, or to every prompt while it is the default; the model gets
//! the template applied and history shows the user's words and the style. `/start` and `/help`
//! carry tappable examples and the examples channel.

use crate::support::{fast, TestApp};

const USER: i64 = 2_001;

async fn style_of(p: &TestApp, prompt: &str) -> (Option<String>, String) {
    sqlx::query_as("SELECT style, aspect_ratio FROM generations WHERE user_id = $1 AND prompt = $2")
        .bind(USER)
        .bind(prompt)
        .fetch_one(&p.db.pool)
        .await
        .expect("generation")
}

#[tokio::test]
async fn a_style_applied_sends_the_template_and_history_shows_the_users_words() {
    let p = TestApp::builder().env("EXAMPLES_URL", "https://t.me/banana_examples").start().await;
    p.funded(USER, 100).await;

    // /styles: a tap on a name is for the next prompt only.
    p.command(USER, "en", "styles");
    let screen = p.wait_text(USER, "Styles").await;
    assert!(screen.callback_data().contains(&"sty:n:anime".to_owned()), "{:?}", screen.callback_data());
    assert_eq!(p.press(USER, screen.message_id, "sty:n:anime").await, "🌸 Anime for the next prompt");
    p.prompt(USER, "en", "a cat on a roof").await;
    assert_eq!(style_of(&p, "a cat on a roof").await, (Some("anime".into()), "16:9".into()));
    p.prompt(USER, "en", "a plain dog").await;
    assert_eq!(style_of(&p, "a plain dog").await.0, None, "only the next prompt");

    // ⭐ makes one the default until it is turned off.
    assert_eq!(p.press(USER, screen.message_id, "sty:d:pixel").await, "👾 Pixel art is now the default");
    p.prompt(USER, "en", "a castle").await;
    assert_eq!(style_of(&p, "a castle").await.0, Some("pixel".into()));
    p.run_worker(fast()).await;
    let redrawn = p.wait_message(USER, "the screen redrawn", |m| !m.edits.is_empty()).await;
    assert!(redrawn.text().is_some_and(|t| t.contains("Default now: 👾 Pixel art")), "{redrawn:?}");
    assert_eq!(p.press(USER, redrawn.message_id, "sty:off").await, "Default style turned off");
    p.prompt(USER, "en", "a boat").await;
    assert_eq!(style_of(&p, "a boat").await.0, None);
    p.run_worker(fast()).await;

    // The model got the template with the user's words; history shows their words and the style.
    let calls = p.gemini.requests();
    let sent = |needle: &str| calls.iter().find(|r| r.prompt.contains(needle)).expect(needle).prompt.clone();
    assert!(sent("a cat on a roof").starts_with("An anime illustration of a cat on a roof,"), "{calls:?}");
    assert_eq!(
        calls.iter().find(|r| r.prompt.contains("a cat on a roof")).and_then(|r| r.aspect_ratio.clone()),
        Some("16:9".into())
    );
    assert!(sent("a castle").starts_with("Pixel art of a castle,"));
    assert_eq!(sent("a plain dog"), "a plain dog");
    assert_eq!(sent("a boat"), "a boat");
    p.command(USER, "en", "history");
    let history = p.wait_message(USER, "the history", |m| m.text().is_some_and(|t| t.starts_with("🖼"))).await;
    let history = history.text().unwrap_or_default().to_owned();
    assert!(history.contains("a cat on a roof (style: 🌸 Anime)"), "{history}");
    assert!(history.contains("a castle (style: 👾 Pixel art)"), "{history}");
    assert!(!history.contains("An anime illustration"), "{history}");
    p.finish().await;
}

#[tokio::test]
async fn start_and_help_offer_three_tappable_examples_and_the_examples_channel() {
    let p = TestApp::builder().env("EXAMPLES_URL", "https://t.me/banana_examples").start().await;
    p.funded(USER, 100).await;
    let chat = p.tg.chat(USER).expect("chat");
    let welcome = &chat.messages[0];
    let examples: Vec<String> =
        welcome.callback_data().into_iter().filter(|d| d.starts_with("ex:")).collect();
    assert_eq!(examples, ["ex:1", "ex:2", "ex:3"]);
    let keyboard = welcome.message["reply_markup"]["inline_keyboard"].to_string();
    assert!(
        keyboard.contains("https://t.me/banana_examples") && keyboard.contains("A red fox"),
        "{keyboard}"
    );
    p.command(USER, "en", "help");
    let help = p.wait_message(USER, "help", |m| m.text().is_some_and(|t| t.contains("How it works"))).await;
    assert!(help.callback_data().contains(&"ex:2".to_owned()));
    // A tap is a prompt like any other.
    assert_eq!(p.press(USER, welcome.message_id, "ex:2").await, "Example sent as a prompt");
    p.until("the example's generation", "SELECT COUNT(*) FROM generations WHERE prompt LIKE 'A red fox%'", 1)
        .await;
    assert_eq!(p.db.balance(USER).await, (90, 10));
    p.run_worker(fast()).await;
    p.finish().await;
}
