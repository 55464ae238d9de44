//! The operator panel's pages for promo codes, broadcasts and the system (issue #19), used
//! from a real headless Chromium as an operator would after logging in through the bot's
//! `/panel` link: a promo code created, a broadcast composed, previewed, started, paused with
//! its progress shown live, resumed to the end, generation paused (a prompt refused) and
//! resumed (a prompt served), the audit run from the page. Screenshots go to
//! `target/test-artifacts/panel_pages/`. Then, over plain HTTP, every form of these pages
//! refused without its session's CSRF token or with a wrong one, writing nothing, and a
//! double submit done once.

use std::collections::BTreeMap;

use fakes::telegram::users;
use serde_json::json;

use crate::support::app::profile;
use crate::support::panel::{login_link, PanelClient, PANEL_SECRET};
use crate::support::{fast, wait, TestApp, WAIT};

const ADMIN: i64 = 1001;
/// Where the broadcast's recipients start, and how many (at ~30 messages a second, about ten
/// seconds of sending: the pause lands mid-way).
const FIRST: i64 = 30_001;
const RECIPIENTS: i64 = 300;

async fn start() -> TestApp {
    TestApp::builder()
        .env("ADMIN_IDS", &ADMIN.to_string())
        .env("PANEL_SECRET", PANEL_SECRET)
        .env("DATABASE_MAX_CONNECTIONS", "10")
        .heavy(5)
        .start()
        .await
}

#[cfg(feature = "sandbox")]
mod in_chromium {
    use std::time::Duration;

    use super::*;
    use crate::browser::Browser;

    /// Waits until the element `css` shows exactly `text`.
    async fn shows(browser: &Browser, css: &str, text: &str) {
        let script = "const e = document.querySelector(arguments[0].css); return e && e.textContent.trim() === arguments[0].text";
        browser
            .wait_until(&format!("{css} shows {text:?}"), script, json!({"css": css, "text": text}), WAIT)
            .await;
    }

    async fn note_says(browser: &Browser, part: &str) {
        let script =
            "const e = document.querySelector('#flash, #flash-error'); return e && e.textContent.includes(arguments[0])";
        browser.wait_until(&format!("the note says {part:?}"), script, json!(part), WAIT).await;
    }

    async fn login(browser: &Browser, app: &TestApp) {
        browser.goto(&login_link(app, ADMIN).await).await;
        browser.click("#login", WAIT).await;
        browser.wait_until("logged in", "return location.pathname === '/panel'", json!(null), WAIT).await;
    }

    #[tokio::test]
    async fn panel_pages_in_chromium_promo_code_broadcast_pause_and_audit() {
        let app = start().await;
        sqlx::query(
            "INSERT INTO users (telegram_id, language, last_seen_at)
             SELECT g, 'en', now() FROM generate_series($1::BIGINT, $2::BIGINT) g",
        )
        .bind(FIRST)
        .bind(FIRST + RECIPIENTS - 1)
        .execute(&app.db.pool)
        .await
        .expect("users");
        {
            let mut tg = app.tg.state().lock();
            for user in FIRST..FIRST + RECIPIENTS {
                tg.ensure_user(users::user_object(user, &profile("en")));
            }
        }
        app.open_chat(ADMIN, "en").await;
        let browser = Browser::start("panel_pages").await;
        login(&browser, &app).await;
        let page = |path: &str| format!("{}/panel/{path}", app.url);

        // A promo code, through the same call as the bot's /promo new.
        browser.goto(&page("promo")).await;
        browser.fill("#new-promo input[name=code]", "Spring26", WAIT).await;
        browser.fill("#new-promo input[name=credits]", "25", WAIT).await;
        browser.fill("#new-promo input[name=uses]", "3", WAIT).await;
        browser.fill("#new-promo input[name=days]", "7", WAIT).await;
        browser.click("#new-promo button", WAIT).await;
        note_says(&browser, "Promo code created").await;
        shows(&browser, "#promo-codes tr[data-code='spring26'] td.num", "25").await;
        browser.screenshot("01-promo").await;
        let (credits, uses, by, week): (i64, i64, String, bool) = sqlx::query_as(
            "SELECT credits, max_uses, created_by, expires_at BETWEEN now() + interval '6 days' AND now() + interval '7 days'
             FROM promo_codes WHERE code = 'spring26'",
        )
        .fetch_one(&app.db.pool)
        .await
        .expect("the code");
        assert_eq!((credits, uses, by.as_str(), week), (25, 3, "panel:1001", true));
        // A real code: a user redeems it in the bot; disabled from the page, it is refused.
        app.open_chat(4002, "en").await;
        users::command(app.tg.state(), 4002, &profile("en"), "promo", Some("spring26")).expect("promo");
        app.wait_text(4002, "Promo code accepted").await;
        browser.goto(&page("promo")).await;
        shows(&browser, "#promo-codes tr[data-code='spring26'] td:nth-child(3)", "1 / 3").await;
        browser.eval("window.confirm = () => true; return 1", json!(null)).await;
        browser.click("#promo-codes tr[data-code='spring26'] button.danger", WAIT).await;
        note_says(&browser, "Promo code disabled").await;
        app.open_chat(4003, "en").await;
        users::command(app.tg.state(), 4003, &profile("en"), "promo", Some("spring26")).expect("promo");
        app.wait_text(4003, "switched off").await;
        assert_eq!(
            app.count("SELECT COUNT(*) FROM promo_codes WHERE code = 'spring26' AND disabled").await,
            1
        );

        // A broadcast to everyone active (the 300, the admin, and the two who used the code):
        // composed, previewed in the admin's chat, started after the confirmation.
        browser.goto(&page("broadcasts")).await;
        browser.type_into("#compose textarea[name=text]", "<b>Spring</b> news from the panel", WAIT).await;
        browser.type_into("#compose input[name=button_text]", "Open", WAIT).await;
        browser.type_into("#compose input[name=button_url]", "https://example.com/spring", WAIT).await;
        browser.click("#compose button", WAIT).await;
        note_says(&browser, "Draft saved").await;
        shows(&browser, "#state", "draft").await;
        browser.click("#preview button", WAIT).await;
        note_says(&browser, "Sent to your own chat").await;
        let preview = app.wait_text(ADMIN, "Spring news from the panel").await;
        assert_eq!(
            preview.message["reply_markup"]["inline_keyboard"][0][0]["url"],
            json!("https://example.com/spring"),
            "{preview:?}"
        );
        shows(&browser, "#audience", &(RECIPIENTS + 3).to_string()).await;
        browser.click("#start-link", WAIT).await;
        browser.screenshot("02-broadcast-confirm").await;
        browser.click("#start button", WAIT).await;
        note_says(&browser, "Started").await;
        // The progress moves on the page by itself (its script polls it); paused mid-way, what
        // was fed to the outbox goes out and the rest waits.
        let moving = "const e = document.getElementById('sent'); return e && Number(e.textContent) > 0";
        browser.wait_until("the first messages sent", moving, json!(null), WAIT).await;
        browser.click("#pause button", WAIT).await;
        note_says(&browser, "Paused").await;
        shows(&browser, "#state", "paused").await;
        let id: i64 =
            sqlx::query_scalar("SELECT id FROM broadcasts").fetch_one(&app.db.pool).await.expect("id");
        wait::until_count(
            &app.db.pool,
            "the fed rows sent",
            "SELECT COUNT(*) FROM outbox WHERE class = 3 AND state IN ('pending', 'sending')",
            0,
        )
        .await;
        let progress = {
            let mut conn = app.db.pool.acquire().await.expect("conn");
            nanobanana::broadcast::progress(&mut conn, id).await.expect("progress")
        };
        assert!(progress.sent > 0 && progress.waiting > 0, "paused mid-way: {progress:?}");
        assert_eq!(progress.sent + progress.waiting + progress.failed + progress.blocked, RECIPIENTS + 3);
        // The page's figures follow by themselves (its script polls the progress).
        shows(&browser, "#sent", &progress.sent.to_string()).await;
        shows(&browser, "#waiting", &progress.waiting.to_string()).await;
        browser.screenshot("03-broadcast-paused").await;
        // Resumed from the bot while the page is open: its buttons follow without a reload
        // (Pause offered again, Resume gone), and the page's Pause then pauses it once more.
        users::command(app.tg.state(), ADMIN, &profile("en"), "broadcast", Some(&format!("resume {id}")))
            .expect("/broadcast resume");
        let offers_pause =
            "const p = document.getElementById('pause'), r = document.getElementById('resume');
                            return p && r && !p.hidden && r.hidden && p.offsetParent !== null";
        browser.wait_until("the page offering Pause again", offers_pause, json!(null), WAIT).await;
        shows(&browser, "#state", "running").await;
        browser.click("#pause button", WAIT).await;
        note_says(&browser, "Paused").await;
        browser.click("#resume button", WAIT).await;
        note_says(&browser, "Resumed").await;
        let done = "const e = document.getElementById('state'); return e && e.textContent.trim() === 'done'";
        browser.wait_until("the broadcast done", done, json!(null), Duration::from_secs(90)).await;
        // A finished broadcast offers no control (the card hides itself as the state arrives).
        let no_control = "const c = document.getElementById('control'); return !c || (c.hidden && c.offsetParent === null)";
        browser.wait_until("the controls gone with the broadcast", no_control, json!(null), WAIT).await;
        shows(&browser, "#sent", &(RECIPIENTS + 3).to_string()).await;
        browser.screenshot("04-broadcast-done").await;
        for user in (FIRST..FIRST + RECIPIENTS).chain([ADMIN, 4002, 4003]) {
            let got = app.tg.chat(user).map_or(0, |c| {
                c.messages
                    .iter()
                    .filter(|m| m.text().is_some_and(|t| t.contains("Spring news from the panel")))
                    .count()
            });
            // The admin also got the preview.
            let want = if user == ADMIN { 2 } else { 1 };
            assert_eq!(got, want, "user {user}");
        }

        // Generation paused for everyone: a prompt is refused and charges nothing.
        browser.goto(&page("system")).await;
        shows(&browser, "#generation-state", "running").await;
        browser.eval("window.confirm = () => true; return 1", json!(null)).await;
        browser.click("#pause button", WAIT).await;
        note_says(&browser, "Generation paused").await;
        shows(&browser, "#generation-state", "paused").await;
        browser.screenshot("05-system-paused").await;
        app.funded(4001, 100).await;
        app.text(4001, "en", "a red fox");
        app.wait_text(4001, "Generation is paused").await;
        assert_eq!(app.count("SELECT COUNT(*) FROM generations WHERE user_id = 4001").await, 0);
        assert_eq!(app.db.balance(4001).await, (100, 0));
        // Resumed: the same prompt is served.
        browser.click("#resume button", WAIT).await;
        note_says(&browser, "Generation resumed").await;
        shows(&browser, "#generation-state", "running").await;
        // Gemini stops serving Nano Banana Pro: the worker's probe at its start marks it.
        app.gemini.remove_model("gemini-3-pro-image");
        app.run_worker(fast()).await;
        app.text(4001, "en", "a red fox");
        app.wait_message(4001, "the picture", |m| m.kind == "photo").await;

        // The background processes' last passes are recorded (the worker's sweep, delivery
        // reconciler and model probe run at its start; serve's Stars refund reconciler at its).
        wait::until_count(
            &app.db.pool,
            "the passes recorded",
            "SELECT COUNT(*) FROM background_runs WHERE ok AND name IN
               ('deadline_sweep', 'delivery_reconciler', 'model_probe', 'stars_refund_reconciler')",
            4,
        )
        .await;
        // The audit, run from the page; the page comes back with the passes too.
        browser.click("#run-audit button", WAIT).await;
        note_says(&browser, "The audit ran").await;
        for process in ["deadline_sweep", "delivery_reconciler", "model_probe", "stars_refund_reconciler"] {
            let row = browser
                .eval(
                    "const r = document.querySelector(`#processes tr[data-process='${arguments[0]}']`); return r && r.textContent",
                    json!(process),
                )
                .await;
            assert!(row.as_str().unwrap_or("").contains("ok,"), "{process}: {row}");
        }
        let model = |key: &str| {
            format!("const r = document.querySelector(\"#models tr[data-model='{key}']\"); return r && r.textContent")
        };
        let pro = browser.eval(&model("pro"), json!(null)).await;
        assert!(
            pro.as_str().unwrap_or("").contains("unavailable — not listed by GET /v1beta/models"),
            "{pro}"
        );
        let nb21 = browser.eval(&model("nb21"), json!(null)).await;
        assert!(nb21.as_str().unwrap_or("").contains("served"), "{nb21}");
        let clean =
            "const e = document.getElementById('audit-result'); return e && e.textContent.includes('clean')";
        browser.wait_until("the audit's result", clean, json!(null), WAIT).await;
        browser.screenshot("06-system-audited").await;

        // The lists show what happened.
        browser.goto(&page("generations")).await;
        browser.find("#generations tr.status-succeeded", WAIT).await;
        browser.screenshot("07-generations").await;
        browser.goto(&page("payments")).await;
        browser.find("#charges", WAIT).await;
        browser.screenshot("08-payments").await;

        // Each page fits a phone's width (wide tables scroll inside their card).
        browser.resize(390, 844).await;
        let fits = "return document.documentElement.scrollWidth <= window.innerWidth + 1";
        for path in ["generations", "payments", "promo", "broadcasts", &format!("broadcasts/{id}"), "system"]
        {
            browser.goto(&page(path)).await;
            browser.find("main h1", WAIT).await;
            let fit = browser.eval(fits, json!(null)).await;
            assert_eq!(fit, json!(true), "/panel/{path} is wider than a phone");
            browser.screenshot(&format!("09-phone-{}", path.replace('/', "-"))).await;
        }
        browser.close().await;

        let actions: BTreeMap<String, i64> =
            sqlx::query_as("SELECT action, COUNT(*) FROM panel_actions WHERE admin_id = $1 GROUP BY 1")
                .bind(ADMIN)
                .fetch_all(&app.db.pool)
                .await
                .expect("actions")
                .into_iter()
                .collect();
        let expected: BTreeMap<String, i64> = [
            "audit_run",
            "broadcast_draft",
            "broadcast_pause",
            "broadcast_preview",
            "broadcast_resume",
            "broadcast_start",
            "generation_pause",
            "generation_resume",
            "promo_create",
            "promo_disable",
        ]
        .into_iter()
        // Paused twice from the page (resumed once from the bot in between).
        .map(|a| (a.to_owned(), if a == "broadcast_pause" { 2 } else { 1 }))
        .collect();
        assert_eq!(actions, expected);
        app.finish().await;
    }
}

/// What the forms could change, to compare before and after.
async fn footprint(app: &TestApp) -> Vec<i64> {
    let mut counts = Vec::new();
    for sql in [
        "SELECT COUNT(*) FROM panel_actions",
        "SELECT COUNT(*) FROM promo_codes",
        "SELECT COUNT(*) FROM promo_codes WHERE disabled",
        "SELECT COUNT(*) FROM broadcasts",
        "SELECT COUNT(*) FROM broadcasts WHERE state <> 'draft' OR segment <> 'all'",
        "SELECT COUNT(*) FROM broadcast_recipients",
        "SELECT COUNT(*) FROM service_state",
        "SELECT COUNT(*) FROM background_runs WHERE name = 'audit'",
        "SELECT COUNT(*) FROM outbox",
    ] {
        counts.push(app.count(sql).await);
    }
    counts
}

#[tokio::test]
async fn panel_forms_without_their_csrf_token_are_refused_and_write_nothing() {
    let app = start().await;
    app.open_chat(ADMIN, "en").await;
    // A draft to aim the broadcast forms at, by the bot's own /broadcast.
    users::command(app.tg.state(), ADMIN, &profile("en"), "broadcast", Some("new Hello")).expect("command");
    app.wait_text(ADMIN, "Draft 1").await;
    let panel = PanelClient::login(&app, ADMIN).await;
    let (http, cookie, csrf) = (&panel.http, &panel.cookie, &panel.csrf);
    app.drained().await;
    let before = footprint(&app).await;

    let forms: [(&str, &[(&str, &str)]); 10] = [
        ("promo", &[("code", "nope1"), ("credits", "5"), ("uses", "1")]),
        ("promo/disable", &[("code", "nope1")]),
        ("broadcasts", &[("text", "Hi")]),
        ("broadcasts/1/segment", &[("segment", "paid")]),
        ("broadcasts/1/preview", &[]),
        ("broadcasts/1/start", &[]),
        ("broadcasts/1/control", &[("action", "cancel")]),
        ("system/pause", &[]),
        ("system/resume", &[]),
        ("system/audit", &[]),
    ];
    let same_length = "x".repeat(csrf.len());
    for (path, fields) in forms {
        let url = format!("{}/panel/{path}", app.url);
        for token in [None, Some(""), Some("wrong"), Some(same_length.as_str())] {
            let key = uuid::Uuid::new_v4().to_string();
            let mut body: Vec<(&str, &str)> = fields.to_vec();
            body.push(("key", &key));
            if let Some(token) = token {
                body.push(("csrf", token));
            }
            let answer = http.post(&url).header("cookie", cookie).form(&body).send().await.expect("answer");
            assert_eq!(answer.status().as_u16(), 403, "{path} with csrf {token:?}");
            let text = answer.text().await.expect("body");
            assert!(text.contains("did not come from the panel"), "{path}: {text}");
        }
        // The right token without the session cookie: not logged in.
        let key = uuid::Uuid::new_v4().to_string();
        let mut body: Vec<(&str, &str)> = fields.to_vec();
        body.extend([("key", key.as_str()), ("csrf", csrf.as_str())]);
        let answer = http.post(&url).form(&body).send().await.expect("answer");
        assert_eq!(answer.status().as_u16(), 401, "{path} without a cookie");
    }
    assert_eq!(footprint(&app).await, before, "a refused form wrote something");

    // With its token, a form submitted twice does its action once.
    let key = uuid::Uuid::new_v4().to_string();
    let body =
        [("csrf", csrf.as_str()), ("key", key.as_str()), ("code", "twice"), ("credits", "5"), ("uses", "2")];
    let mut places = Vec::new();
    for _ in 0..2 {
        let answer = http
            .post(format!("{}/panel/promo", app.url))
            .header("cookie", cookie)
            .form(&body)
            .send()
            .await
            .expect("answer");
        assert_eq!(answer.status().as_u16(), 303);
        places.push(answer.headers()[reqwest::header::LOCATION].to_str().expect("location").to_owned());
    }
    assert_eq!(places, ["/panel/promo?note=created", "/panel/promo?note=again"]);
    assert_eq!(app.count("SELECT COUNT(*) FROM promo_codes WHERE code = 'twice'").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM panel_actions WHERE action = 'promo_create'").await, 1);
    app.finish().await;
}

/// An operator's pause holds until the operator resumes: the worker's probe never takes it,
/// Gemini's own pause does not replace it and a successful call does not lift it.
#[tokio::test]
async fn an_operators_pause_is_lifted_only_by_an_operator() {
    use std::time::Duration;

    use nanobanana::jobs::pause;

    let db = crate::support::TestDb::new().await;
    let mut conn = db.conn().await;
    assert!(pause::pause_by_operator(&mut conn, ADMIN).await.expect("pause"));
    assert!(!pause::pause_by_operator(&mut conn, ADMIN).await.expect("again"), "already the operator's");
    assert!(!pause::take_probe(&mut conn, Duration::from_secs(1)).await.expect("probe"));
    assert!(!pause::pause(&mut conn, "daily_quota", Duration::ZERO).await.expect("Gemini's pause"));
    assert!(!pause::resume(&mut conn).await.expect("a call succeeded"));
    let held = pause::is_paused(&mut conn).await.expect("read").expect("still paused");
    assert!(held.by_operator(), "{held:?}");
    assert_eq!(held.reason, "operator: paused by admin 1001");
    assert!(pause::resume_by_operator(&mut conn).await.expect("resume"));
    assert_eq!(pause::is_paused(&mut conn).await.expect("read"), None);
    // Gemini's pause, once the operator resumed, works as before, and the operator can end it.
    assert!(pause::pause(&mut conn, "daily_quota", Duration::ZERO).await.expect("Gemini's pause"));
    assert!(pause::take_probe(&mut conn, Duration::from_secs(60)).await.expect("probe"));
    assert!(pause::resume_by_operator(&mut conn).await.expect("the operator resumes"));
}

/// The lists over HTTP: generations newest first a page at a time (no row twice, none lost),
/// waiting ones highlighted, failures with their reason and counted by it, the filters, bad
/// filters refused; charges with the pending one highlighted and the held refund first.
#[tokio::test]
async fn panel_lists_filter_page_and_highlight() {
    use nanobanana::ledger::{self, Settlement};

    let app = start().await;
    let user = 5001;
    app.db.user_with(user, 1000).await;
    let mut ids = Vec::new();
    for i in 0..55 {
        let id = app.db.request_prompt(user, 10, &format!("prompt number {i}")).await.expect("request");
        if i < 54 {
            let epoch = app.db.start(id).await;
            let settlement = if i % 20 == 7 {
                Settlement::Release { error: "prompt_blocked" }
            } else {
                Settlement::Commit
            };
            app.db.settle(id, epoch, settlement).await.expect("settle");
        }
        ids.push(id);
    }
    let queued = *ids.last().expect("the last");
    let panel = PanelClient::login(&app, ADMIN).await;
    let rows = |html: &str| -> Vec<String> {
        html.split("data-id=\"").skip(1).filter_map(|r| r.split('"').next()).map(str::to_owned).collect()
    };

    // Page one: the 50 newest, the queued one first and highlighted; then the 5 older.
    let (status, first) = panel.get("/panel/generations").await;
    assert_eq!(status.as_u16(), 200, "{first}");
    let one = rows(&first);
    assert_eq!(one.len(), 50);
    assert_eq!(one[0], queued.to_string());
    assert!(first.contains(&format!("<tr class=\"hot status-queued\" data-id=\"{queued}\">")), "{first}");
    let older = first.split("id=\"older\" href=\"").nth(1).and_then(|r| r.split('"').next()).expect("older");
    let (_, second) = panel.get(&older.replace("&amp;", "&")).await;
    let two = rows(&second);
    assert_eq!(two.len(), 5);
    let mut seen: Vec<String> = one.into_iter().chain(two).collect();
    seen.sort();
    let mut all: Vec<String> = ids.iter().map(ToString::to_string).collect();
    all.sort();
    assert_eq!(seen, all, "every generation once across the pages");

    // Failures: three, with their reason, and counted by it.
    let (_, failed) = panel.get("/panel/generations?status=failed").await;
    assert_eq!(rows(&failed).len(), 3);
    assert_eq!(failed.matches("<span class=\"bad reason\">prompt_blocked</span>").count(), 3);
    assert!(
        failed.contains("<td class=\"bad\">prompt_blocked</td><td>nb21</td><td class=\"num\">3</td>"),
        "{failed}"
    );
    assert_eq!(rows(&panel.get("/panel/generations?model=nb21&status=queued").await.1).len(), 1);
    assert_eq!(rows(&panel.get("/panel/generations?model=pro").await.1).len(), 0);
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).format("%Y-%m-%d").to_string();
    assert_eq!(rows(&panel.get(&format!("/panel/generations?from={tomorrow}")).await.1).len(), 0);
    assert_eq!(rows(&panel.get(&format!("/panel/generations?to={tomorrow}")).await.1).len(), 50);
    for bad in ["status=lost", "from=yesterday", "before=nonsense"] {
        let (status, _) = panel.get(&format!("/panel/generations?{bad}")).await;
        assert_eq!(status.as_u16(), 400, "{bad}");
    }

    // Charges: one credited, one pending at the provider; a refund held on the credited one.
    let paid = app.db.succeeded_charge(user, 100).await;
    app.db.credit(paid).await.expect("credited");
    let topup = app.db.topup(user, 50).await;
    let pending = app.db.charge(topup, "pay-pending", nanobanana::db::payments::ChargeStatus::Pending).await;
    let hold = ledger::RefundHold {
        refund_id: uuid::Uuid::new_v4(),
        payment_id: paid,
        credits: crate::support::credits_of(40),
        amount_minor: 4000,
        reason: Some("asked by the user"),
    };
    let mut tx = app.db.pool.begin().await.expect("begin");
    ledger::refund_hold(&mut tx, &hold).await.expect("held");
    tx.commit().await.expect("commit");
    let (_, page) = panel.get("/panel/payments").await;
    assert!(page.contains(&format!("<tr class=\"hot status-pending\" data-id=\"{pending}\">")), "{page}");
    assert!(page.contains(&format!("<tr class=\"status-succeeded\" data-id=\"{paid}\">")), "{page}");
    assert!(
        page.contains(&format!("<tr class=\"hot status-held\" data-id=\"{}\">", hold.refund_id)),
        "{page}"
    );
    assert!(page.contains("<div class=\"value\" id=\"pending-count\">1</div>"), "{page}");
    assert!(page.contains("id=\"held-count\">1</div>"), "{page}");
    let (_, only) = panel.get("/panel/payments?status=pending").await;
    assert!(only.contains("pay-pending") && !only.contains("status-succeeded\" data-id"), "{only}");
    let (_, stars) = panel.get("/panel/payments?provider=stars").await;
    assert!(stars.contains("No charges match."), "{stars}");
    assert_eq!(panel.get("/panel/payments?provider=paypal").await.0.as_u16(), 400);

    // What was left waiting ends, so the test ends settled and audited.
    let epoch = app.db.start(queued).await;
    app.db.settle(queued, epoch, Settlement::Release { error: "test over" }).await.expect("release");
    app.finish().await;
}
