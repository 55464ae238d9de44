//! The operator panel from a test: the admin's login link from the bot, a logged-in HTTP
//! client (cookie and CSRF token in hand), and the forms' hidden fields.

use reqwest::redirect::Policy;
use reqwest::StatusCode;

use super::app::TestApp;

/// The `PANEL_SECRET` the panel tests run with.
pub const PANEL_SECRET: &str = "panel-test-secret-0123456789abcdef0123";

/// An admin's `/panel` in the bot: the one-time login link it answers with.
pub async fn login_link(app: &TestApp, admin: i64) -> String {
    const LINK: &str = "/panel/login?token=";
    let before = app.count_texts(admin, LINK);
    app.command(admin, "en", "/panel");
    let links = |chat: &fakes::telegram::ChatRecord| -> Vec<String> {
        super::app::texts(chat)
            .iter()
            .flat_map(|t| t.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
            .filter(|word| word.contains(LINK))
            .collect()
    };
    let chat = app.chat(admin, |chat| links(chat).len() > before).await;
    links(&chat).pop().expect("a login link")
}

/// The value of the first `<input name="NAME" value="…">` in `html`.
pub fn field(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &html[at + name.len() + 15..];
    rest.split('"').next().map(str::to_owned)
}

/// A browser-less session of the panel.
pub struct PanelClient {
    pub http: reqwest::Client,
    pub base: String,
    pub cookie: String,
    pub csrf: String,
}

impl PanelClient {
    /// A client that never follows redirects (the tests look at them).
    pub fn http() -> reqwest::Client {
        reqwest::Client::builder().redirect(Policy::none()).build().expect("HTTP client")
    }

    /// Logs `admin` in through the bot's link, as a browser would: the link's page, its button.
    pub async fn login(app: &TestApp, admin: i64) -> Self {
        let link = login_link(app, admin).await;
        let http = Self::http();
        let page = http.get(&link).send().await.expect("login page");
        assert_eq!(page.status(), StatusCode::OK);
        let token = field(&page.text().await.unwrap_or_default(), "token").expect("the login form's token");
        let answer = http
            .post(format!("{}/panel/login", app.url))
            .form(&[("token", token.as_str())])
            .send()
            .await
            .expect("login");
        assert_eq!(answer.status(), StatusCode::SEE_OTHER);
        let set_cookie = answer
            .headers()
            .get(reqwest::header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .expect("a session cookie")
            .to_owned();
        let cookie = set_cookie.split(';').next().unwrap_or_default().to_owned();
        let mut client = Self { http, base: app.url.clone(), cookie, csrf: String::new() };
        let (status, home) = client.get("/panel").await;
        assert_eq!(status, StatusCode::OK, "{home}");
        client.csrf = field(&home, "csrf").expect("the page's CSRF token");
        client
    }

    /// GET `path` with the session: status and body.
    pub async fn get(&self, path: &str) -> (StatusCode, String) {
        let answer = self
            .http
            .get(format!("{}{path}", self.base))
            .header(reqwest::header::COOKIE, &self.cookie)
            .send()
            .await
            .expect("panel answers");
        (answer.status(), answer.text().await.unwrap_or_default())
    }

    /// POST the form `fields` to `path` with the session (the caller adds `csrf` and `key`).
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::COOKIE, &self.cookie)
            .form(fields)
            .send()
            .await
            .expect("panel answers")
    }
}
