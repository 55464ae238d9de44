//! Which HTTP the Gemini client speaks (`GEMINI_HTTP_VERSION`) and how it spreads HTTP/2 calls
//! over connections (`GEMINI_STREAMS_PER_CONNECTION`), against the fake Gemini over real
//! sockets: the fake counts the calls it holds at once, per HTTP version, and its connections.

use std::time::Duration;

use fakes::FakeGemini;
use nanobanana::config::{GeminiConfig, HttpVersion};
use nanobanana::gemini::{Class, Client, Outcome, Request};

async fn fake(config: fakes::GeminiConfig) -> FakeGemini {
    FakeGemini::start(fakes::GeminiConfig { small: true, ..config }).await.expect("fake gemini starts")
}

fn client(fake: &FakeGemini, http_version: HttpVersion, streams_per_connection: u32) -> Client {
    let config = GeminiConfig {
        timeout_secs: 60,
        http_version,
        streams_per_connection,
        ..super::gemini::config(fake)
    };
    Client::new(&config).expect("client")
}

fn request(n: usize) -> Request {
    Request {
        model_id: "gemini-3.1-flash-lite-image".into(),
        prompt: format!("a banana number {n}"),
        references: vec![],
        aspect_ratio: "1:1".into(),
        size: None,
        history: Vec::new(),
    }
}

#[tokio::test]
async fn gemini_http2_calls_beyond_a_connections_stream_limit_are_all_in_flight_at_once() {
    // Like Google (100 streams per connection), scaled down: 10 per connection, 45 calls.
    let latency = Duration::from_secs(2);
    let fake = fake(fakes::GeminiConfig { max_streams: 10, latency, ..Default::default() }).await;
    let client = client(&fake, HttpVersion::Http2, 10);
    let calls: Vec<_> = (0..45)
        .map(|n| {
            let client = client.clone();
            tokio::spawn(async move { client.generate(&request(n)).await })
        })
        .collect();

    // One connection would carry 10 at a time (hyper queues the rest on it), so the fake would
    // never hold all 45 at once however long it waited.
    let seen =
        fake.wait_for_peak_in_flight(45, Duration::from_secs(30)).await.expect("45 calls held at once");
    for call in calls {
        let reply = call.await.expect("call task");
        assert!(matches!(reply.outcome, Outcome::Image(_)), "{reply:?}");
    }
    assert_eq!(seen.peak_in_flight, 45);
    let stats = fake.stats();
    assert_eq!((stats.http2_calls, stats.http1_calls), (45, 0));
    assert_eq!(stats.connections, 5, "45 calls at 10 per connection: {stats:?}");
    assert_eq!(client.lanes(), 5);

    // The next burst reuses the connections it opened.
    let again = client.generate(&request(99)).await;
    assert!(matches!(again.outcome, Outcome::Image(_)), "{again:?}");
    assert_eq!(fake.stats().connections, 5);
}

#[tokio::test]
async fn gemini_http_versions_on_plain_http() {
    let both = fake(fakes::GeminiConfig::default()).await;
    let auto = client(&both, HttpVersion::Auto, 100);
    let h2c = client(&both, HttpVersion::Http2, 100);
    let http1 = client(&both, HttpVersion::Http1, 100);

    for client in [&auto, &h2c, &http1] {
        let reply = client.generate(&request(1)).await;
        assert!(matches!(reply.outcome, Outcome::Image(_)), "{reply:?}");
    }

    // auto on http:// never guesses h2c: HTTP/1.1 unless told (http2).
    let versions: Vec<_> = both.requests().into_iter().map(|r| r.http_version).collect();
    assert_eq!(versions, ["HTTP/1.1", "HTTP/2.0", "HTTP/1.1"]);
    assert_eq!((auto.lanes(), h2c.lanes(), http1.lanes()), (1, 1, 1));
}

#[tokio::test]
async fn gemini_http1_keeps_working_where_the_server_has_no_http2() {
    let http1_only = fake(fakes::GeminiConfig { http1_only: true, ..Default::default() }).await;

    let auto = client(&http1_only, HttpVersion::Auto, 100).generate(&request(1)).await;
    let told_h2c = client(&http1_only, HttpVersion::Http2, 100).generate(&request(2)).await;

    assert!(matches!(auto.outcome, Outcome::Image(_)), "{auto:?}");
    // Prior knowledge that is wrong is a transport failure, retried like one, never a success.
    assert_eq!((told_h2c.outcome.class(), told_h2c.status), (Class::Retry, None), "{told_h2c:?}");
    let stats = http1_only.stats();
    assert_eq!((stats.http1_calls, stats.http2_calls), (1, 0));
}
