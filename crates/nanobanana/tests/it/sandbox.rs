//! `nanobanana sandbox`: the service with the three fakes in-process and the web chat, used
//! from a real headless Chromium as a person would, then its JSON API's refusals. Screenshots
//! go to `target/test-artifacts/sandbox/`.

use std::time::Duration;

use nanobanana::sandbox::{Options, Sandbox};
use serde_json::{json, Value};

use crate::browser::Browser;
use crate::support::{Leave, TestDb};

const WAIT: Duration = Duration::from_secs(30);

async fn count(db: &TestDb, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&db.pool).await.expect(sql)
}

async fn start(db: &TestDb) -> Sandbox {
    let redis =
        std::env::var("REDIS_URL").unwrap_or_else(|_| nanobanana::config::DEFAULT_REDIS_URL.to_owned());
    let options = Options {
        listen: "127.0.0.1:0".parse().expect("address"),
        database_url: db.url.clone(),
        redis_url: redis.parse().expect("REDIS_URL"),
        redis_prefix: format!("nbtest:{}:", uuid::Uuid::new_v4().simple()),
        storage_dir: std::env::temp_dir().join(format!("nbtest-sandbox-{}", uuid::Uuid::new_v4().simple())),
        gemini_latency: Duration::from_millis(300),
        small_images: true,
    };
    Sandbox::start(options).await.expect("the sandbox starts")
}

/// The text of the current user's balance in the chat header.
const BALANCE: &str = "return document.getElementById('balance').textContent";

async fn balance_is(browser: &Browser, credits: i64) {
    let script = format!("{BALANCE} === arguments[0] ? 'yes' : ''");
    browser
        .wait_until(&format!("the balance shows {credits}"), &script, json!(credits.to_string()), WAIT)
        .await;
}

/// How many bot photos have loaded (decoded, with a size) in the chat.
const LOADED_PHOTOS: &str = "return Array.from(document.querySelectorAll('.row.bot img.photo'))\
    .filter(i => i.complete && i.naturalWidth > 0).length >= arguments[0]";

#[tokio::test]
async fn sandbox_in_chromium_chat_prompt_picture_original_album_and_credits() {
    // A whole service with its pools: it takes turns with the other connection-heavy tests.
    let db = TestDb::heavy(5).await;
    let sandbox = start(&db).await;
    let browser = Browser::start("sandbox").await;
    browser.goto(&format!("{}/?user=1001", sandbox.url())).await;

    // A new chat shows START, as Telegram does; pressing it sends /start (and brings the
    // starter credits: 10, one picture of the default model).
    browser.click("#start", WAIT).await;
    browser
        .wait_until(
            "the welcome",
            "return Array.from(document.querySelectorAll('.row.bot .text')).some(t => t.textContent.includes('Nano Banana Pro'))",
            json!(null),
            WAIT,
        )
        .await;
    browser.screenshot("01-welcome").await;

    // Credits in rubles: /buy, a pack, the terms, then the fake YooKassa's checkout page (under
    // the sandbox's address) with Pay; it sends the browser back to the chat.
    browser.type_into("#composer-text", "/buy", WAIT).await;
    browser.click("#send", WAIT).await;
    browser.click(".row.bot .kb-button[data-data='buy:rub100']", WAIT).await;
    browser.click(".row.bot .kb-button[data-data^='terms:']", WAIT).await;
    browser.click(".row.bot a.kb-button.url", WAIT).await;
    browser
        .wait_until(
            "the checkout page",
            "return location.pathname.startsWith('/checkout/')",
            json!(null),
            WAIT,
        )
        .await;
    browser.screenshot("02-checkout").await;
    browser.click("form[action$='/pay'] button", WAIT).await;
    browser.wait_until("back in the chat", "return location.pathname === '/'", json!(null), WAIT).await;
    balance_is(&browser, 110).await;

    // Credits in Stars: the invoice pays in place.
    browser.type_into("#composer-text", "/buy", WAIT).await;
    browser.click("#send", WAIT).await;
    browser.click(".row.bot .kb-button[data-data='buy:xtr100']", WAIT).await;
    browser.click(".row.bot .kb-button[data-pay]", WAIT).await;
    balance_is(&browser, 210).await;
    browser.screenshot("03-paid").await;

    // The operator's grant from the panel moves the balance too.
    browser.fill("#grant-form input[name=credits]", "50", WAIT).await;
    browser.click("#grant-form button", WAIT).await;
    balance_is(&browser, 260).await;

    // Inline buttons: /settings, then "photo and the original as a file"; the message is
    // edited in place and the button's answer shows as a toast.
    browser.type_into("#composer-text", "/settings", WAIT).await;
    browser.click("#send", WAIT).await;
    browser.click(".row.bot .kb-button[data-data='st:d:file']", WAIT).await;
    browser
        .wait_until(
            "the settings message edited",
            "return Array.from(document.querySelectorAll('.row.bot .meta')).some(m => m.textContent.startsWith('edited'))",
            json!(null),
            WAIT,
        )
        .await;
    browser
        .wait_until(
            "the toast",
            "const t = document.getElementById('toast'); return !t.hidden && t.textContent",
            json!(null),
            WAIT,
        )
        .await;
    browser.screenshot("04-settings").await;

    // A prompt: the status message, then the picture and the original; the price is committed.
    browser.type_into("#composer-text", "a banana astronaut", WAIT).await;
    browser.click("#send", WAIT).await;
    browser.wait_until("the picture arrives", LOADED_PHOTOS, json!(1), WAIT).await;
    balance_is(&browser, 250).await;
    let href = browser
        .wait_until(
            "the original arrives",
            "const a = document.querySelector('.row.bot a.document'); return a && a.href",
            json!(null),
            WAIT,
        )
        .await;
    browser.screenshot("05-picture").await;
    // Opening the original gives the image file itself.
    browser.click(".row.bot a.document", WAIT).await;
    let original = reqwest::get(href.as_str().expect("a link")).await.expect("the original downloads");
    let content_type = original.headers()[reqwest::header::CONTENT_TYPE].to_str().unwrap_or("").to_owned();
    assert!(content_type.starts_with("image/"), "{content_type}");
    assert!(!original.bytes().await.expect("bytes").is_empty());

    // Two photos chosen at once are one album: one generation, one charge.
    let dir = std::env::temp_dir().join(format!("nbtest-album-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("album dir");
    let paths: Vec<String> = (0..2u8)
        .map(|i| {
            let path = dir.join(format!("ref{i}.png"));
            std::fs::write(
                &path,
                fakes::common::image::render_png(120, 90, &fakes::common::image::seed_of(&[&[i]])),
            )
            .expect("write a photo");
            path.display().to_string()
        })
        .collect();
    browser.type_into("#attach", &paths.join("\n"), WAIT).await;
    browser
        .wait_until(
            "two attachments",
            "return document.querySelectorAll('.attachment').length === 2",
            json!(null),
            WAIT,
        )
        .await;
    browser.type_into("#composer-text", "the two of them together", WAIT).await;
    browser.click("#send", WAIT).await;
    browser.wait_until("the album's picture", LOADED_PHOTOS, json!(2), WAIT).await;
    balance_is(&browser, 240).await;
    let user_photos =
        browser.eval("return document.querySelectorAll('.row.user img.photo').length", json!(null)).await;
    assert_eq!(user_photos, json!(2));
    browser.screenshot("06-album").await;
    let _ = std::fs::remove_dir_all(&dir);

    // Another simulated user has a chat of their own, starting empty.
    browser.click("#users li[data-user='1002']", WAIT).await;
    browser.find("#start", WAIT).await;
    balance_is(&browser, 0).await;
    browser.screenshot("07-other-user").await;

    // The side panel's "Operator panel": /panel as the admin (the first user, whose chat it
    // opens), the bot's one-time link in the chat, and the link logs the browser in.
    browser.click("#operator-panel", WAIT).await;
    let link = browser
        .wait_until(
            "the panel's login link",
            "const a = Array.from(document.querySelectorAll('.row.bot .text a')).find(a => a.href.includes('/panel/login?token=')); return a && a.href",
            json!(null),
            WAIT,
        )
        .await;
    let chatting_as =
        browser.eval("return document.getElementById('chat-with').textContent", json!(null)).await;
    assert!(chatting_as.as_str().unwrap_or("").contains("Alice"), "{chatting_as}");
    // One press, one command (the side panel redraws every poll; its button must not multiply).
    let sent = browser
        .eval(
            "return Array.from(document.querySelectorAll('.row.user .text')).filter(t => t.textContent.trim() === '/panel').length",
            json!(null),
        )
        .await;
    assert_eq!(sent, json!(1));
    browser.screenshot("08-panel-link").await;
    browser.goto(link.as_str().expect("a link")).await;
    browser.click("#login", WAIT).await;
    browser
        .wait_until(
            "the operator panel",
            "return location.pathname === '/panel' && document.querySelector('header.top .who').textContent.includes('1001')",
            json!(null),
            WAIT,
        )
        .await;
    browser.screenshot("09-panel").await;
    browser.close().await;

    db.assert_settled(Leave::default()).await;
    sandbox.stop().await.expect("the sandbox stops cleanly");
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM generations WHERE status NOT IN ('succeeded', 'failed')").await,
        0
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM generations WHERE status = 'succeeded'").await, 2);
    db.assert_audit_clean().await;
}

#[tokio::test]
async fn sandbox_api_refuses_bad_input_and_changes_nothing() {
    // A whole service with its pools: it takes turns with the other connection-heavy tests.
    let db = TestDb::heavy(5).await;
    let sandbox = start(&db).await;
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| http.post(format!("{}{path}", sandbox.url())).json(&body).send();
    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(status(post("/api/users/1001/text", json!({"text": "  "})).await.expect("answer")), 400);
    assert_eq!(status(post("/api/users/4242/text", json!({"text": "hi"})).await.expect("answer")), 404);
    assert_eq!(
        status(post("/api/users/1001/press", json!({"message_id": 9, "data": "x"})).await.expect("answer")),
        404
    );
    assert_eq!(status(post("/api/users/1001/photos", json!({"items": []})).await.expect("answer")), 400);
    let eleven: Vec<Value> = (0..11).map(|_| json!({"data_base64": "aGVsbG8="})).collect();
    assert_eq!(status(post("/api/users/1001/photos", json!({"items": eleven})).await.expect("answer")), 400);
    assert_eq!(status(post("/api/users/1001/grant", json!({"credits": -5})).await.expect("answer")), 400);
    assert_eq!(
        status(
            post("/api/gemini/queue", json!({"behaviour": "nonsense", "count": 1})).await.expect("answer")
        ),
        400
    );
    assert_eq!(
        status(post("/api/telegram/faults", json!({"kind": "429", "count": 0})).await.expect("answer")),
        400
    );
    assert_eq!(
        status(post("/api/users", json!({"first_name": "", "language_code": "en"})).await.expect("answer")),
        400
    );
    let missing = http.get(format!("{}/files/nope", sandbox.url())).send().await.expect("answer");
    assert_eq!(missing.status().as_u16(), 404);
    // DNS rebinding: a request naming another host is refused, even with a valid body.
    let rebound = http
        .post(format!("{}/api/users/1001/text", sandbox.url()))
        .header("host", "evil.example")
        .json(&json!({"text": "hi"}))
        .send()
        .await
        .expect("answer");
    assert_eq!(rebound.status().as_u16(), 421);
    let page = http.get(format!("{}/", sandbox.url())).header("host", "evil.example:80").send().await;
    assert_eq!(page.expect("answer").status().as_u16(), 421);
    let page = http.get(format!("{}/", sandbox.url())).header("host", "localhost").send().await;
    assert_eq!(page.expect("answer").status().as_u16(), 200);
    // Nothing reached the bot and no switch moved.
    assert!(sandbox.telegram().pending_updates().is_empty());
    assert!(sandbox.telegram().chat(1001).is_none_or(|c| c.messages.is_empty()));
    assert!(sandbox.gemini().queued().is_empty());
    assert_eq!(count(&db, "SELECT COUNT(*) FROM users").await, 0);

    // Valid switches take effect and are shown.
    assert_eq!(
        status(post("/api/gemini/queue", json!({"behaviour": "503", "count": 2})).await.expect("answer")),
        200
    );
    assert_eq!(status(post("/api/gemini/latency", json!({"ms": 1200})).await.expect("answer")), 200);
    let state: Value = http
        .get(format!("{}/api/state?user=1001", sandbox.url()))
        .send()
        .await
        .expect("state")
        .json()
        .await
        .expect("JSON");
    assert_eq!(state["switches"]["gemini"]["queued"], json!(["503", "503"]), "{state}");
    assert_eq!(state["switches"]["gemini"]["latency_ms"], 1200);
    db.assert_settled(Leave::default()).await;
    sandbox.stop().await.expect("stops");
    db.assert_audit_clean().await;
}

/// `nanobanana sandbox` as a process: it refuses a database not meant for it, prints its one
/// URL, starts from an empty database every time, and exits 0 on SIGTERM.
#[tokio::test]
async fn sandbox_command_prints_its_url_resets_its_database_and_stops_on_sigterm() {
    use tokio::io::AsyncBufReadExt;

    let server = crate::support::server_url();
    let refused = tokio::process::Command::new(crate::support::process::binary())
        .args(["sandbox", "--listen", "127.0.0.1:0", "--database", "nanobanana"])
        .env("DATABASE_URL", server.as_str())
        .output()
        .await
        .expect("run the sandbox");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("must contain \"sandbox\""), "{refused:?}");

    let database = format!("nbt_{}_sandbox", std::process::id());
    let mut url = server.clone();
    url.set_path(&format!("/{database}"));
    for round in 0..2 {
        let mut child = tokio::process::Command::new(crate::support::process::binary())
            .args(["sandbox", "--listen", "127.0.0.1:0", "--database", &database])
            .env("DATABASE_URL", server.as_str())
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the sandbox");
        let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
        // Logs share stdout; the URL is the line that says so.
        let find_url = async {
            while let Some(line) = lines.next_line().await.expect("read stdout") {
                if let Some(web) = line.strip_prefix("sandbox: open ") {
                    return web.to_owned();
                }
            }
            panic!("the sandbox ended without printing its URL");
        };
        let web = tokio::time::timeout(Duration::from_secs(120), find_url).await.expect("the URL in time");
        // Keep draining stdout so the sandbox never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let page = reqwest::get(&web).await.expect("the chat answers");
        assert!(page.status().is_success());
        let pool = sqlx::PgPool::connect(url.as_str()).await.expect("the sandbox's database exists");
        // What the previous round left is gone.
        let users: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&pool).await.expect("count");
        assert_eq!(users, 0, "round {round}");
        let state = reqwest::Client::new()
            .post(format!("{web}/api/users/1001/grant"))
            .json(&json!({"credits": 5}))
            .send()
            .await
            .expect("grant");
        assert!(state.status().is_success());
        pool.close().await;
        let pid = child.id().expect("pid").to_string();
        let killed = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
        assert!(killed.success());
        let status = tokio::time::timeout(WAIT, child.wait()).await.expect("stops in time").expect("status");
        assert!(status.success(), "{status}");
    }
    let mut admin = server.clone();
    admin.set_path("/postgres");
    let admin = sqlx::PgPool::connect(admin.as_str()).await.expect("connect");
    sqlx::query(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
        .execute(&admin)
        .await
        .expect("drop");
}

/// The sandbox shows issue 18's features through its API as the page uses them: a reply to a
/// picture edits it (the fake Gemini gets the conversation), ×4 on a result makes four
/// variants of one request, and `/styles` applies a preset to the next prompt.
#[tokio::test]
async fn sandbox_api_replies_edit_pictures_and_shows_variants_and_styles() {
    let db = TestDb::heavy(5).await;
    let sandbox = start(&db).await;
    let http = reqwest::Client::new();
    let post = |path: String, body: Value| http.post(format!("{}{path}", sandbox.url())).json(&body).send();
    let tg = sandbox.telegram();
    let until = |what: &'static str, sql: String, want: i64| {
        let db = &db;
        async move {
            crate::support::wait::until(what, WAIT, || async {
                let n = count(db, &sql).await;
                if n == want {
                    Ok(())
                } else {
                    Err(format!("{n}"))
                }
            })
            .await
        }
    };
    post("/api/users/1001/text".into(), json!({"text": "/start"})).await.expect("start");
    until("the user", "SELECT COUNT(*) FROM users WHERE telegram_id = 1001".into(), 1).await;
    post("/api/users/1001/grant".into(), json!({"credits": 200})).await.expect("grant");
    post("/api/users/1001/text".into(), json!({"text": "a lighthouse"})).await.expect("prompt");
    until(
        "the picture",
        "SELECT COUNT(*) FROM outbox WHERE delivers IS NOT NULL AND message_id IS NOT NULL".into(),
        1,
    )
    .await;
    let photo = tg.chat(1001).expect("chat").messages.into_iter().find(|m| m.kind == "photo").expect("photo");
    // A reply to a message that does not exist is refused; to the picture, it edits it.
    let missing = post("/api/users/1001/text".into(), json!({"text": "x", "reply_to_message_id": 99_999}));
    assert_eq!(missing.await.expect("answer").status().as_u16(), 404);
    let reply = json!({"text": "make it night", "reply_to_message_id": photo.message_id});
    assert_eq!(post("/api/users/1001/text".into(), reply).await.expect("reply").status().as_u16(), 200);
    until(
        "the edit",
        "SELECT COUNT(*) FROM generations WHERE parent_id IS NOT NULL AND status = 'succeeded'".into(),
        1,
    )
    .await;
    let edit =
        sandbox.gemini().requests().into_iter().find(|r| r.prompt.contains("make it night")).expect("call");
    assert_eq!(edit.turns.len(), 3, "{edit:?}");
    // ×4 under the picture.
    let x4 = photo.callback_data().into_iter().find(|d| d.starts_with("x4:")).expect("×4 button");
    post("/api/users/1001/press".into(), json!({"message_id": photo.message_id, "data": x4}))
        .await
        .expect("×4");
    until("four variants", "SELECT COUNT(*) FROM generations WHERE request_id IS NOT NULL".into(), 4).await;
    // /styles, then the next prompt in that style.
    post("/api/users/1001/text".into(), json!({"text": "/styles"})).await.expect("styles");
    let screen = crate::support::wait::until("the styles screen", WAIT, || async {
        let chat = tg.chat(1001).ok_or("no chat")?;
        chat.messages
            .into_iter()
            .find(|m| m.callback_data().iter().any(|d| d == "sty:n:watercolor"))
            .ok_or("not yet")
    })
    .await;
    post(
        "/api/users/1001/press".into(),
        json!({"message_id": screen.message_id, "data": "sty:n:watercolor"}),
    )
    .await
    .expect("style");
    until("the styled answer", "SELECT COUNT(*) FROM users WHERE awaiting = 'styled'".into(), 1).await;
    post("/api/users/1001/text".into(), json!({"text": "a harbour"})).await.expect("prompt");
    until("the styled prompt", "SELECT COUNT(*) FROM generations WHERE style = 'watercolor'".into(), 1).await;
    db.assert_settled(Leave::default()).await;
    let styled =
        sandbox.gemini().requests().into_iter().find(|r| r.prompt.contains("a harbour")).expect("call");
    assert!(styled.prompt.starts_with("A delicate watercolor painting of a harbour"), "{}", styled.prompt);
    sandbox.stop().await.expect("stops");
    db.assert_audit_clean().await;
}
