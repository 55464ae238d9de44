//! The Gemini client and the global limits against the fake Gemini over real HTTP and a real
//! Redis (`REDIS_URL`), each test under its own key prefix.

use std::time::Duration;

use fakes::common::image::{render_jpeg, render_png};
use fakes::gemini::Behaviour;
use fakes::FakeGemini;
use nanobanana::config::{GeminiConfig, HttpVersion, DEFAULT_REDIS_URL};
use nanobanana::domain::ImageSize;
use nanobanana::gemini::{
    Class, Client, Gateway, ImageFormat, LimitError, LimitSettings, Limits, ModelsError, Outcome, Reference,
    Request,
};
use nanobanana::secret::Secret;
use redis::aio::ConnectionManager;

async fn fake() -> FakeGemini {
    let config = fakes::GeminiConfig { small: true, ..Default::default() };
    FakeGemini::start(config).await.expect("fake gemini starts")
}

pub(crate) fn config(fake: &FakeGemini) -> GeminiConfig {
    GeminiConfig {
        api_key: Secret::new(fake.api_key().to_owned()),
        api_url: url::Url::parse(&fake.base_url()).expect("fake URL"),
        proxy: None,
        max_concurrency: 4,
        requests_per_minute: 1_000,
        timeout_secs: 30,
        http_version: HttpVersion::Auto,
        streams_per_connection: 100,
        model_probe_secs: 300,
    }
}

pub(crate) const PRO: &str = "gemini-3-pro-image";
/// Takes no `imageSize` (the fake answers 400 if it gets one).
pub(crate) const LITE: &str = "gemini-3.1-flash-lite-image";

fn client(fake: &FakeGemini) -> Client {
    Client::new(&config(fake)).expect("client")
}

pub(crate) fn request(model: &str, prompt: &str) -> Request {
    Request {
        model_id: model.into(),
        prompt: prompt.into(),
        references: vec![],
        aspect_ratio: "1:1".into(),
        size: (model != LITE).then_some(ImageSize::K1),
        history: Vec::new(),
    }
}

async fn redis() -> ConnectionManager {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| DEFAULT_REDIS_URL.to_owned());
    let client = redis::Client::open(url).expect("REDIS_URL");
    ConnectionManager::new(client).await.expect("redis reachable")
}

fn settings(prefix: &str, max_concurrency: u32, rpm: u32, max_wait: Duration) -> LimitSettings {
    LimitSettings {
        prefix: prefix.to_owned(),
        max_concurrency,
        requests_per_minute: rpm,
        window: nanobanana::gemini::MINUTE,
        max_wait,
    }
}

fn prefix() -> String {
    format!("nbtest:{}:", uuid::Uuid::new_v4().simple())
}

#[tokio::test]
async fn gemini_pro_request_carries_size_and_references_and_skips_thought_images() {
    let fake = fake().await;
    let png = render_png(40, 30, &[7; 32]);
    let jpeg = render_jpeg(20, 20, &[9; 32]);
    let mut req = request(PRO, "a banana astronaut [[png]]");
    req.aspect_ratio = "16:9".into();
    req.size = Some(ImageSize::K2);
    req.references = vec![
        Reference { mime_type: "image/png".into(), bytes: png.clone() },
        Reference { mime_type: "image/jpeg".into(), bytes: jpeg.clone() },
    ];

    let reply = client(&fake).generate(&req).await;

    let Outcome::Image(image) = &reply.outcome else { panic!("expected an image: {reply:?}") };
    // The fake's thought images are a quarter of the final one's size (small: 64 px long side).
    assert_eq!((image.format, image.width, image.height), (ImageFormat::Png, 64, 35));
    assert_eq!(image.mime(), "image/png");
    assert_eq!(reply.status, Some(200));
    let usage = reply.usage.expect("usage");
    assert_eq!((usage.candidates_token_count, usage.thoughts_token_count), (1120, 180));
    let seen = fake.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].model, "gemini-3-pro-image");
    assert_eq!(seen[0].image_size.as_deref(), Some("2K"));
    assert_eq!(seen[0].aspect_ratio.as_deref(), Some("16:9"));
    assert_eq!(seen[0].prompt, "a banana astronaut [[png]]");
    let refs: Vec<_> = seen[0].references.iter().map(|r| (r.mime_type.as_str(), r.size)).collect();
    assert_eq!(refs, [("image/png", png.len()), ("image/jpeg", jpeg.len())]);
}

#[tokio::test]
async fn gemini_image_size_is_sent_whenever_the_model_takes_it() {
    let fake = fake().await;
    let req = request(LITE, "a pear [[jpeg]]");
    let reply = client(&fake).generate(&req).await;
    let Outcome::Image(image) = &reply.outcome else { panic!("expected an image: {reply:?}") };
    assert_eq!((image.format, image.width, image.height), (ImageFormat::Jpeg, 64, 64));

    // No aspect ratio chosen beyond the default: the size is sent all the same.
    let mut sized = request("gemini-nano-banana-2.1", "a plum");
    sized.size = Some(ImageSize::K4);
    assert!(matches!(client(&fake).generate(&sized).await.outcome, Outcome::Image(_)));
    let seen: Vec<_> = fake.requests().into_iter().map(|r| (r.model, r.image_size)).collect();
    assert_eq!(
        seen,
        [
            (LITE.to_owned(), Some("1K".to_owned())),
            ("gemini-nano-banana-2.1".to_owned(), Some("4K".to_owned()))
        ]
    );
}

#[tokio::test]
async fn gemini_every_outcome_class_through_the_fake() {
    let fake = fake().await;
    let client = client(&fake);
    let outcome = |prompt: &'static str| {
        let client = client.clone();
        async move { client.generate(&request(LITE, prompt)).await.outcome }
    };

    let limited = outcome("x [[429:7]]").await;
    assert!(matches!(&limited, Outcome::Retryable { after: Some(d), .. } if *d == Duration::from_secs(7)));
    assert!(matches!(outcome("x [[429day]]").await, Outcome::DailyQuota { .. }));
    for marker in ["x [[500]]", "x [[503]]", "x [[504]]"] {
        assert!(matches!(outcome(marker).await, Outcome::Retryable { after: None, .. }), "{marker}");
    }
    assert_eq!(outcome("x [[blocked:SAFETY]]").await, Outcome::Blocked { reason: "SAFETY".into() });
    assert_eq!(outcome("x [[image_safety]]").await, Outcome::Blocked { reason: "IMAGE_SAFETY".into() });
    assert_eq!(outcome("x [[no_image]]").await, Outcome::NoImage { finish_reason: Some("NO_IMAGE".into()) });
    let unknown = outcome("x [[finish:IMAGE_SOMETHING_NEW]]").await;
    assert_eq!(unknown, Outcome::NoImage { finish_reason: Some("IMAGE_SOMETHING_NEW".into()) });
    assert!(
        matches!(outcome("x [[text_only]]").await, Outcome::TextRefusal { text } if text.contains("can't"))
    );

    fake.queue(Behaviour::Server(503), 1);
    let queued = client.generate(&request(PRO, "plain")).await;
    assert_eq!((queued.outcome.class(), queued.status), (Class::Retry, Some(503)));

    let mut bad_ratio = request(LITE, "plain");
    bad_ratio.aspect_ratio = "7:5".into();
    let invalid = client.generate(&bad_ratio).await.outcome;
    assert!(
        matches!(&invalid, Outcome::Invalid { reason } if reason.contains("aspect ratio")),
        "{invalid:?}"
    );

    let missing = client.generate(&request("gemini-3.1-flash-image", "x")).await;
    assert!(
        matches!(&missing.outcome, Outcome::ModelNotFound { reason } if reason.starts_with("404 NOT_FOUND"))
    );
    assert_eq!(missing.outcome.class(), Class::ModelGone);
}

#[tokio::test]
async fn gemini_bad_key_is_invalid_key_and_never_shown() {
    let fake = fake().await;
    let mut wrong = config(&fake);
    wrong.api_key = Secret::new("sk-wrong-key-123".into());
    let client = Client::new(&wrong).expect("client");

    let reply = client.generate(&request(PRO, "x")).await;

    assert!(matches!(reply.outcome, Outcome::InvalidKey { .. }), "{reply:?}");
    assert_eq!(reply.outcome.class(), Class::Pause);
    assert!(!format!("{client:?} {reply:?}").contains("sk-wrong-key-123"));
    let models = client.check_models(&["gemini-3-pro-image"]).await;
    assert!(matches!(models, Err(ModelsError::Answer { status: 400, outcome: Outcome::InvalidKey { .. } })));
}

#[tokio::test]
async fn gemini_a_redirect_is_not_followed_with_the_key() {
    let fake = fake().await;
    // A server that sends every call elsewhere (here: to the real fake) with a 307, which
    // keeps the method, body and, if followed, the key header.
    let target = fake.base_url();
    let redirect = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let location = format!("{target}{}", uri.path_and_query().map_or("", |p| p.as_str()));
        async move { (axum::http::StatusCode::TEMPORARY_REDIRECT, [(axum::http::header::LOCATION, location)]) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let server = tokio::spawn(async move { axum::serve(listener, redirect).await });
    let mut redirected = config(&fake);
    redirected.api_url = url::Url::parse(&format!("http://{address}")).expect("url");
    let client = Client::new(&redirected).expect("client");

    let reply = client.generate(&request(LITE, "x")).await;

    assert!(!matches!(reply.outcome, Outcome::Image(_)), "{reply:?}");
    assert!(fake.requests().is_empty(), "the key followed the redirect: {:?}", fake.requests().len());
    server.abort();
}

#[tokio::test]
async fn gemini_dropped_connection_and_hang_are_retryable() {
    let fake = fake().await;
    let mut short = config(&fake);
    short.timeout_secs = 1;
    let client = Client::new(&short).expect("client");

    let dropped = client.generate(&request(LITE, "x [[drop]]")).await;
    let hung = client.generate(&request(LITE, "x [[hang]]")).await;

    assert!(matches!(&dropped.outcome, Outcome::Retryable { after: None, .. }), "{dropped:?}");
    assert!(
        matches!(&hung.outcome, Outcome::Retryable { reason, .. } if reason.contains("timed out")),
        "{hung:?}"
    );
    assert_eq!(hung.status, None);
    assert_eq!(fake.requests().len(), 2, "both requests reached the fake");
}

#[tokio::test]
async fn gemini_model_check_reports_missing_ids() {
    let fake = fake().await;
    let ids = ["gemini-3-pro-image", "gemini-2.5-flash-image", "gemini-3.1-flash-image"];

    let missing = client(&fake).check_models(&ids).await.expect("models listed");

    assert_eq!(missing, ["gemini-2.5-flash-image", "gemini-3.1-flash-image"]);
    fake.remove_model("gemini-3-pro-image");
    let missing = client(&fake).check_models(&["gemini-3-pro-image", LITE]).await.expect("models listed");
    assert_eq!(missing, ["gemini-3-pro-image"]);
}

#[tokio::test]
async fn gemini_proxy_is_honoured() {
    let fake = fake().await;
    // The fake serves absolute-form requests, so it can stand in for an HTTP proxy: the API
    // host does not exist, so an answer proves the request went through the proxy.
    let mut proxied = config(&fake);
    proxied.api_url = url::Url::parse("http://gemini.invalid").expect("url");
    proxied.proxy =
        Some(nanobanana::secret::Secret::new(url::Url::parse(&fake.base_url()).expect("proxy url")));
    let reply = Client::new(&proxied).expect("client").generate(&request(LITE, "x")).await;
    assert!(matches!(reply.outcome, Outcome::Image(_)), "{reply:?}");

    let mut socks = config(&fake);
    socks.proxy =
        Some(nanobanana::secret::Secret::new(url::Url::parse("socks5h://127.0.0.1:9").expect("socks url")));
    let unreachable = Client::new(&socks).expect("socks5 accepted").generate(&request(LITE, "x")).await;
    assert_eq!(unreachable.outcome.class(), Class::Retry);
    assert_eq!(fake.requests().len(), 1, "nothing bypassed the dead proxy");
}

#[tokio::test]
async fn gemini_limits_bound_concurrency_per_process() {
    let limits = Limits::new(redis().await, settings(&prefix(), 2, 1_000, Duration::from_millis(100)));

    let first = limits.acquire().await.expect("first slot");
    let _second = limits.acquire().await.expect("second slot");
    let third = limits.acquire().await;

    assert!(matches!(third, Err(LimitError::Busy { retry_after: None })), "{third:?}");
    assert_eq!(limits.in_flight(), 2);
    drop(first);
    limits.acquire().await.expect("a slot after one was freed");
}

#[tokio::test]
async fn gemini_gateway_keeps_calls_in_flight_under_the_limit() {
    let fake = fake().await;
    fake.set_latency(Duration::from_millis(150));
    let limits = Limits::new(redis().await, settings(&prefix(), 2, 1_000, Duration::from_secs(20)));
    let gateway = Gateway::new(client(&fake), limits.clone());

    let calls: Vec<_> = (0..5)
        .map(|n| {
            let gateway = gateway.clone();
            tokio::spawn(async move { gateway.generate(&request(LITE, &format!("cat {n}"))).await })
        })
        .collect();
    let mut peak = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !calls.iter().all(|c| c.is_finished()) && tokio::time::Instant::now() < deadline {
        peak = peak.max(limits.in_flight());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }

    assert_eq!(peak, 2, "the limit is reached and never passed");
    for call in calls {
        let reply = call.await.expect("task").expect("slot");
        assert!(matches!(reply.outcome, Outcome::Image(_)), "{reply:?}");
    }
    assert_eq!(fake.requests().len(), 5);
}

#[tokio::test]
async fn gemini_rpm_is_shared_across_processes_and_isolated_by_prefix() {
    let shared = prefix();
    let wait = Duration::from_millis(200);
    let a = Limits::new(redis().await, settings(&shared, 10, 3, wait));
    let b = Limits::new(redis().await, settings(&shared, 10, 3, wait));
    let other = Limits::new(redis().await, settings(&prefix(), 10, 3, wait));

    for limits in [&a, &a, &b] {
        drop(limits.acquire().await.expect("within the minute's budget"));
    }
    let over_a = a.acquire().await;
    let over_b = b.acquire().await;

    for over in [over_a, over_b] {
        assert!(
            matches!(over, Err(LimitError::Busy { retry_after: Some(d) }) if d > Duration::from_secs(30))
        );
    }
    drop(other.acquire().await.expect("another prefix has its own budget"));
}

#[tokio::test]
async fn gemini_rpm_window_frees_slots_as_it_slides() {
    let mut short = settings(&prefix(), 10, 2, Duration::ZERO);
    short.window = Duration::from_millis(500);
    let limits = Limits::new(redis().await, short.clone());
    drop(limits.acquire().await.expect("first"));
    drop(limits.acquire().await.expect("second"));
    assert!(matches!(limits.acquire().await, Err(LimitError::Busy { retry_after: Some(_) })));

    short.max_wait = Duration::from_secs(10);
    let patient = Limits::new(redis().await, short);
    drop(patient.acquire().await.expect("a slot once the window slid"));
}

#[tokio::test]
async fn gemini_a_429_delay_slows_every_process() {
    let fake = fake().await;
    let shared = prefix();
    let wait = Duration::from_millis(100);
    let gateway = Gateway::new(client(&fake), Limits::new(redis().await, settings(&shared, 4, 1_000, wait)));
    let elsewhere = Limits::new(redis().await, settings(&shared, 4, 1_000, wait));
    let unrelated = Limits::new(redis().await, settings(&prefix(), 4, 1_000, wait));
    assert_eq!(elsewhere.slowed_for().await.expect("redis"), None);

    let reply = gateway.generate(&request(PRO, "x [[429:5]]")).await.expect("slot");

    assert_eq!(reply.outcome.retry_after(), Some(Duration::from_secs(5)));
    let left = elsewhere.slowed_for().await.expect("redis").expect("slowed down");
    assert!(left > Duration::from_secs(3) && left <= Duration::from_secs(5), "{left:?}");
    let held = elsewhere.acquire().await;
    assert!(matches!(held, Err(LimitError::Busy { retry_after: Some(d) }) if d > Duration::from_secs(3)));
    let next = gateway.generate(&request(PRO, "y")).await;
    assert!(matches!(next, Err(LimitError::Busy { .. })), "the process that got the 429 waits too");
    assert_eq!(fake.requests().len(), 1);
    drop(unrelated.acquire().await.expect("other prefixes are not slowed"));
}

#[tokio::test]
async fn gemini_full_size_answers_are_read_and_checked() {
    let fake = FakeGemini::start(fakes::GeminiConfig::default()).await.expect("fake gemini starts");

    let reply = client(&fake).generate(&request(PRO, "a full-size lemon [[png]]")).await;

    let Outcome::Image(image) = &reply.outcome else { panic!("expected an image: {reply:?}") };
    assert_eq!((image.format, image.width, image.height), (ImageFormat::Png, 1024, 1024));
    // Over 256 KiB of answer: classified on the blocking pool.
    assert!(image.bytes.len() > 256 * 1024, "{} bytes", image.bytes.len());
}
