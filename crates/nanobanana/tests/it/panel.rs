//! The operator panel (issue #19): login through the bot's one-time link, the refusals (no
//! cookie, a forged one, a reused, expired, tampered or non-admin's link, a missing or wrong
//! CSRF token — each refused with nothing written), and the actions on a user: over plain HTTP
//! and in a real headless Chromium. Every test ends with the audit clean.

use std::time::Duration;

use nanobanana::db::panel::{token, Link};
use nanobanana::secret::Secret;
use reqwest::StatusCode;
use uuid::Uuid;

use crate::browser::Browser;
use crate::support::panel::{field, login_link, PanelClient, PANEL_SECRET};
use crate::support::shop::{Shop, ADMIN};
use crate::support::TestApp;

const WAIT: Duration = Duration::from_secs(30);

async fn panel_app(admins: &str) -> TestApp {
    TestApp::builder().env("ADMIN_IDS", admins).env("PANEL_SECRET", PANEL_SECRET).start().await
}

/// What nothing-written means here: sessions, actions, journal rows.
async fn written(app: &TestApp) -> (i64, i64, i64) {
    (
        app.count("SELECT COUNT(*) FROM panel_sessions").await,
        app.count("SELECT COUNT(*) FROM panel_actions").await,
        app.count("SELECT COUNT(*) FROM transactions").await,
    )
}

fn signed(admin: i64, expires_at: i64) -> String {
    token(&Secret::new(PANEL_SECRET.to_owned()), &Link { id: Uuid::new_v4(), admin, expires_at })
}

async fn login_with(app: &TestApp, token: &str) -> (StatusCode, String) {
    let answer = PanelClient::http()
        .post(format!("{}/panel/login", app.url))
        .form(&[("token", token)])
        .send()
        .await
        .expect("login answers");
    let status = answer.status();
    (status, answer.text().await.unwrap_or_default())
}

#[tokio::test]
async fn panel_login_refuses_what_it_must_and_writes_nothing() {
    let (admin, other) = (8101, 8102);
    let app = panel_app(&admin.to_string()).await;
    app.db.user_with(other, 5).await;

    // A non-admin's /panel is an unknown command: no link.
    app.command(other, "en", "/panel");
    app.wait_text(other, "/help").await;
    assert_eq!(app.count_texts(other, "/panel/login"), 0);

    let http = PanelClient::http();
    let get = |path: &str, cookie: Option<&str>| {
        let mut request = http.get(format!("{}{path}", app.url));
        if let Some(cookie) = cookie {
            request = request.header(reqwest::header::COOKIE, cookie);
        }
        request.send()
    };
    let before = written(&app).await;
    // No cookie, a forged cookie.
    let none = get("/panel", None).await.expect("answers");
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert!(none.text().await.unwrap_or_default().contains("Not logged in"));
    let forged = get("/panel/users", Some("nb_panel=AAAAforgedAAAA")).await.expect("answers");
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    assert!(forged.text().await.unwrap_or_default().contains("not valid"));
    // An expired link, a tampered one, a non-admin's, a malformed one.
    let now = chrono::Utc::now().timestamp();
    let (status, body) = login_with(&app, &signed(admin, now - 1)).await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert!(body.contains("expired"), "{body}");
    let good = signed(admin, now + 300);
    let tampered = good.replacen(&format!(".{admin}."), &format!(".{other}."), 1);
    let (status, body) = login_with(&app, &tampered).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("not signed by this service"), "{body}");
    let (status, body) = login_with(&app, &signed(other, now + 300)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("not for an admin"), "{body}");
    let (status, _) = login_with(&app, "garbage").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A correctly signed link the bot never issued has no row: refused as used.
    let (status, _) = login_with(&app, &good).await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(written(&app).await, before, "refusals wrote nothing");

    // The bot's link: its page does not use it (a link preview may fetch it); the button does.
    let link = login_link(&app, admin).await;
    for _ in 0..2 {
        let page = get(link.trim_start_matches(&app.url), None).await.expect("answers");
        assert_eq!(page.status(), StatusCode::OK);
    }
    let page = http.get(&link).send().await.expect("answers").text().await.unwrap_or_default();
    let token = field(&page, "token").expect("token");
    let answer =
        http.post(format!("{}/panel/login", app.url)).form(&[("token", token.as_str())]).send().await;
    let answer = answer.expect("answers");
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    let cookie = answer.headers()[reqwest::header::SET_COOKIE].to_str().unwrap_or_default().to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/panel", "Max-Age="] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http on loopback: not Secure ({cookie})");
    // Used once: the same link again is refused, and no second session opens.
    let (status, body) = login_with(&app, &token).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(body.contains("already used"), "{body}");
    assert_eq!(app.count("SELECT COUNT(*) FROM panel_sessions").await, 1);

    let session = cookie.split(';').next().unwrap_or_default().to_owned();
    let home = get("/panel", Some(&session)).await.expect("answers");
    assert_eq!(home.status(), StatusCode::OK);
    let home = home.text().await.unwrap_or_default();
    assert!(home.contains(&format!("admin {admin}")));
    let csrf = field(&home, "csrf").expect("csrf");
    let client = PanelClient { http: http.clone(), base: app.url.clone(), cookie: session.clone(), csrf };

    // Forms without the CSRF token, or with another, change nothing.
    let user = format!("/panel/users/{other}");
    let key = Uuid::new_v4().to_string();
    let before = written(&app).await;
    for csrf in [None, Some("wrong"), Some("")] {
        let mut form = vec![("key", key.as_str()), ("direction", "grant"), ("credits", "7"), ("reason", "x")];
        if let Some(csrf) = csrf {
            form.push(("csrf", csrf));
        }
        for action in ["adjust", "ban", "refund", "resend"] {
            let answer = client.post(&format!("{user}/{action}"), &form).await;
            assert_eq!(answer.status(), StatusCode::FORBIDDEN, "{action} with csrf {csrf:?}");
        }
        let logout = client.post("/panel/logout", &form).await;
        assert_eq!(logout.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(written(&app).await, before, "no CSRF, nothing written");
    assert_eq!(app.db.balance(other).await, (5, 0));
    let (_, page) = client.get(&user).await;
    assert!(page.contains("id=\"paid\">5<"), "{page}");

    // With the token: one grant, however often the same form is sent.
    let form = [
        ("csrf", client.csrf.as_str()),
        ("key", key.as_str()),
        ("direction", "grant"),
        ("credits", "7"),
        ("reason", "support ticket 12"),
    ];
    for _ in 0..3 {
        let answer = client.post(&format!("{user}/adjust"), &form).await;
        assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    }
    assert_eq!(app.db.balance(other).await, (12, 0));
    let grants =
        format!("SELECT COUNT(*) FROM transactions WHERE type = 'grant' AND actor = 'panel:{admin}'");
    assert_eq!(app.count(&grants).await, 1, "one grant, by the admin");
    app.wait_text(other, "7").await;
    // Bad input: a clear 400, nothing written.
    let key2 = Uuid::new_v4().to_string();
    for (credits, reason) in [("-3", "x"), ("many", "x"), ("3", " ")] {
        let bad = [
            ("csrf", client.csrf.as_str()),
            ("key", key2.as_str()),
            ("direction", "grant"),
            ("credits", credits),
            ("reason", reason),
        ];
        let answer = client.post(&format!("{user}/adjust"), &bad).await;
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "{credits} {reason:?}");
    }
    // A deduct beyond the balance is refused with the figures.
    let deduct = [
        ("csrf", client.csrf.as_str()),
        ("key", key2.as_str()),
        ("direction", "deduct"),
        ("credits", "100"),
        ("reason", "mistake"),
    ];
    let answer = client.post(&format!("{user}/adjust"), &deduct).await;
    let to = answer.headers()[reqwest::header::LOCATION].to_str().unwrap_or_default().to_owned();
    let (_, page) = client.get(&to).await;
    assert!(page.contains("has 12 credits available"), "{page}");
    assert_eq!(app.db.balance(other).await, (12, 0));

    // Logout ends the session server-side: the old cookie is refused afterwards.
    let answer = client.post("/panel/logout", &[("csrf", client.csrf.as_str())]).await;
    assert_eq!(answer.status(), StatusCode::OK);
    let after = get("/panel", Some(&session)).await.expect("answers");
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);

    // A session of someone no longer in ADMIN_IDS dies at its next request.
    let mut conn = app.db.conn().await;
    let secret = Secret::new(PANEL_SECRET.to_owned());
    let issued = nanobanana::db::panel::create_link(&mut conn, &secret, other).await.expect("link");
    let link = nanobanana::db::panel::verify_link(&secret, &issued, chrono::Utc::now()).expect("valid");
    let removed = nanobanana::db::panel::use_link(&mut conn, &link, 1).await.expect("session");
    let stale = get("/panel", Some(&format!("nb_panel={}", removed.token))).await.expect("answers");
    assert_eq!(stale.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.count("SELECT COUNT(*) FROM panel_sessions WHERE ended_at IS NULL").await, 0);
    drop(conn);
    app.finish().await;
}

#[tokio::test]
async fn panel_in_chromium_finds_a_user_grants_bans_and_refunds() {
    let shop = Shop::start(&[("PANEL_SECRET", PANEL_SECRET)]).await;
    let user = 8201;
    let topup = shop.paid_user(user, "en").await;
    // A picture, for the thumbnails and "resend".
    shop.run_worker(crate::support::fast()).await;
    let picture = shop.prompt(user, "en", "a banana on the moon").await;
    shop.wait_status(picture, "succeeded").await;
    shop.wait_message(user, "the picture", |m| m.kind == "photo").await;
    let paid = shop.db.balance(user).await.0;
    let link = login_link(&shop, ADMIN).await;

    let browser = Browser::start("panel").await;
    browser.goto(&link).await;
    browser.click("#login", WAIT).await;
    browser.find("#welcome", WAIT).await;
    browser.screenshot("1-home").await;

    browser.goto(&format!("{}/panel/users", shop.url)).await;
    browser.fill("#user-search", &user.to_string(), WAIT).await;
    browser.click("form.inline button", WAIT).await;
    browser.click(&format!("a[href='/panel/users/{user}']"), WAIT).await;
    browser.find("#paid", WAIT).await;
    let shown =
        browser.eval("return document.querySelector('#paid').textContent", serde_json::json!(null)).await;
    assert_eq!(shown, serde_json::json!(paid.to_string()));
    let thumb = "const i = document.querySelector('img.thumb'); return i && i.complete && i.naturalWidth > 0";
    browser.wait_until("the thumbnail drawn", thumb, serde_json::json!(null), WAIT).await;
    browser.screenshot("2-user").await;

    // Grant 15 credits.
    browser.fill("#adjust input[name=credits]", "15", WAIT).await;
    browser.fill("#adjust input[name=reason]", "compensation for a slow night", WAIT).await;
    browser.click("#adjust button", WAIT).await;
    browser
        .wait_until(
            "granted",
            "return document.querySelector('#flash')?.textContent.includes('granted')",
            serde_json::json!(null),
            WAIT,
        )
        .await;
    assert_eq!(shop.db.balance(user).await, (paid + 15, 0));

    // Refund 40 credits of the topup (confirm dialogs accepted as a person would).
    browser.eval("window.confirm = () => true; return true", serde_json::json!(null)).await;
    browser.fill("form.refund input[name=credits]", "40", WAIT).await;
    browser.click("form.refund button", WAIT).await;
    browser
        .wait_until(
            "refunded",
            "return document.querySelector('#flash')?.textContent.includes('Refunded')",
            serde_json::json!(null),
            WAIT,
        )
        .await;
    browser.screenshot("3-refunded").await;
    assert_eq!(shop.db.balance(user).await, (paid + 15 - 40, 0));
    assert_eq!(
        shop.count("SELECT COUNT(*) FROM refunds WHERE status = 'succeeded' AND credits = 40").await,
        1
    );
    let refunded: String =
        sqlx::query_scalar("SELECT reason FROM refunds").fetch_one(&shop.db.pool).await.expect("refund row");
    assert_eq!(refunded, format!("panel:{ADMIN}"));

    // Resend the picture: a second photo in the chat.
    let photos = |c: &fakes::telegram::ChatRecord| c.messages.iter().filter(|m| m.kind == "photo").count();
    let before = photos(&shop.chat(user, |_| true).await);
    browser.click("#generations form button", WAIT).await;
    let resent = "return document.querySelector('#flash')?.textContent.includes('again')";
    browser.wait_until("resent", resent, serde_json::json!(null), WAIT).await;
    shop.chat(user, |c| photos(c) > before).await;

    // Ban, then unban.
    browser.eval("window.confirm = () => true; return true", serde_json::json!(null)).await;
    browser.click("#ban button", WAIT).await;
    browser
        .wait_until(
            "banned",
            "return document.querySelector('#status')?.textContent === 'banned'",
            serde_json::json!(null),
            WAIT,
        )
        .await;
    browser.click("#ban button", WAIT).await;
    browser
        .wait_until(
            "unbanned",
            "return document.querySelector('#status')?.textContent === 'active'",
            serde_json::json!(null),
            WAIT,
        )
        .await;
    assert_eq!(shop.count("SELECT COUNT(*) FROM panel_actions WHERE admin_id = 9000").await, 5);
    browser.screenshot("4-actions").await;
    // On a phone the page fits its width: nothing but the tables scrolls sideways.
    browser.resize(390, 844).await;
    let fits = "return document.documentElement.scrollWidth <= window.innerWidth + 1";
    browser.wait_until("fits a phone", fits, serde_json::json!(null), WAIT).await;
    browser.screenshot("5-phone").await;
    browser.close().await;
    // The admins' actions are on the user's page, with who did them.
    let client = PanelClient::login(&shop, ADMIN).await;
    let (_, page) = client.get(&format!("/panel/users/{user}")).await;
    for action in ["grant", "refund", "resend", "ban", "unban"] {
        assert!(page.contains(&format!("<td>{action}</td>")), "{action} listed");
    }
    // The same refund form sent twice refunds once: its key is the refund's id.
    let key = field(&page, "key").expect("the page's form key");
    let form =
        [("csrf", client.csrf.as_str()), ("key", key.as_str()), ("topup", topup.as_str()), ("credits", "10")];
    for _ in 0..2 {
        let answer = client.post(&format!("/panel/users/{user}/refund"), &form).await;
        assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    }
    assert_eq!(shop.count("SELECT COUNT(*) FROM refunds WHERE status = 'succeeded'").await, 2);
    assert_eq!(shop.db.balance(user).await, (paid + 15 - 40 - 10, 0));
    shop.finish().await;
}
