//! Gemini: key and model checks, request validation, images (sizes, thoughts, determinism),
//! behaviours (errors, blocks, finish reasons, drops, hangs) and recorded requests.

use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::support::*;
use fakes::common::image::{render_png, seed_of};
use fakes::common::image_info::sniff;
use fakes::gemini::Behaviour;
use fakes::{FakeGemini, GeminiConfig};

const PRO: &str = "gemini-3-pro-image";
const FLASH: &str = "gemini-3.1-flash-lite-image";
const NB21: &str = "gemini-nano-banana-2.1";

async fn start(small: bool) -> FakeGemini {
    let config = GeminiConfig { small, hang: Duration::from_secs(5), ..GeminiConfig::default() };
    FakeGemini::start(config).await.expect("start fake gemini")
}

async fn generate(fake: &FakeGemini, model: &str, body: &Value) -> (u16, Value) {
    let url = format!("{}/v1beta/models/{model}:generateContent", fake.base_url());
    let response =
        client().post(url).header("x-goog-api-key", fake.api_key()).json(body).send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn prompt(text: &str, ratio: &str) -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": text}]}],
        "generationConfig": {"responseModalities": ["TEXT", "IMAGE"], "imageConfig": {"aspectRatio": ratio}}})
}

/// The final image: the last image part that is not a thought.
fn final_image(answer: &Value) -> Vec<u8> {
    let parts = answer["candidates"][0]["content"]["parts"].as_array().expect("parts");
    let part = parts
        .iter()
        .rev()
        .find(|p| p.get("inlineData").is_some() && p["thought"] != true)
        .expect("final image");
    let bytes = fakes::gemini::request::decode_base64(part["inlineData"]["data"].as_str().expect("data"))
        .expect("base64");
    let info = sniff(&bytes).expect("an image");
    assert_eq!(part["inlineData"]["mimeType"], info.mime, "mimeType matches the bytes");
    bytes
}

fn assert_google_error(answer: &(u16, Value), code: u16, status: &str) {
    assert_eq!(answer.0, code, "{}", answer.1);
    assert_eq!(answer.1["error"]["code"], code);
    assert_eq!(answer.1["error"]["status"], status);
    assert!(answer.1["error"]["message"].is_string());
}

#[tokio::test]
async fn keys_and_models_are_checked() {
    let fake = start(true).await;
    let url = format!("{}/v1beta/models", fake.base_url());
    let (status, models) = get_json(&format!("{url}?key={}", fake.api_key())).await;
    assert_eq!(status, 200);
    let names: Vec<&str> =
        models["models"].as_array().expect("models").iter().filter_map(|m| m["name"].as_str()).collect();
    assert_eq!(
        names,
        ["models/gemini-3-pro-image", "models/gemini-nano-banana-2.1", "models/gemini-3.1-flash-lite-image"]
    );
    assert_google_error(&get_json(&url).await, 403, "PERMISSION_DENIED");
    let wrong = client()
        .post(format!("{url}/{PRO}:generateContent"))
        .header("x-goog-api-key", "nope")
        .json(&prompt("x", "1:1"))
        .send()
        .await
        .expect("request");
    let wrong = (wrong.status().as_u16(), wrong.json::<Value>().await.expect("json"));
    assert_google_error(&wrong, 400, "INVALID_ARGUMENT");
    assert_eq!(wrong.1["error"]["details"][0]["reason"], "API_KEY_INVALID");
    assert_google_error(
        &generate(&fake, "gemini-2.5-flash-image", &prompt("x", "1:1")).await,
        404,
        "NOT_FOUND",
    );
}

#[tokio::test]
async fn pro_answers_with_thoughts_then_a_deterministic_final_image() {
    let fake = start(true).await;
    let (status, answer) = generate(&fake, PRO, &prompt("a banana on the moon", "16:9")).await;
    assert_eq!(status, 200, "{answer}");
    let parts = answer["candidates"][0]["content"]["parts"].as_array().expect("parts");
    let thought_images = |parts: &[Value]| {
        parts.iter().filter(|p| p["thought"] == true && p.get("inlineData").is_some()).count()
    };
    assert!(thought_images(parts) <= 2);
    // How many interim images come varies with the request, from none to two.
    let mut seen = std::collections::BTreeSet::new();
    for n in 0..12 {
        let answer = generate(&fake, PRO, &prompt(&format!("variant {n}"), "1:1")).await.1;
        let parts = answer["candidates"][0]["content"]["parts"].as_array().expect("parts").clone();
        seen.insert(thought_images(&parts));
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), [0, 1, 2]);
    assert!(parts.iter().any(|p| p["thoughtSignature"].is_string()));
    assert_eq!(answer["candidates"][0]["finishReason"], "STOP");
    assert!(answer["usageMetadata"]["totalTokenCount"].as_u64().is_some_and(|t| t > 0));
    let image = final_image(&answer);
    let info = sniff(&image).expect("a PNG");
    assert_eq!((info.width, info.height), (64, 35));

    let again = generate(&fake, PRO, &prompt("a banana on the moon", "16:9")).await.1;
    assert_eq!(final_image(&again), image, "same prompt, same image");
    let other = generate(&fake, PRO, &prompt("a banana on mars", "16:9")).await.1;
    assert_ne!(final_image(&other), image, "another prompt, another image");
}

#[tokio::test]
async fn full_size_images_follow_ratio_and_size() {
    let fake = start(false).await;
    let mut body = prompt("a square", "1:1");
    body["generationConfig"]["imageConfig"]["imageSize"] = json!("1K");
    let answer = generate(&fake, PRO, &body).await.1;
    let info = sniff(&final_image(&answer)).expect("png");
    assert_eq!((info.width, info.height), (1024, 1024));
    let flash = generate(&fake, FLASH, &prompt("a wide one", "21:9")).await.1;
    let info = sniff(&final_image(&flash)).expect("png");
    assert_eq!((info.width, info.height), (1584, 672));
    assert!(flash["candidates"][0]["content"]["parts"]
        .as_array()
        .expect("parts")
        .iter()
        .all(|p| p["thought"] != true));
}

#[tokio::test]
async fn sizes_are_honoured_and_the_switches_remove_a_model_and_shrink_pictures() {
    let fake = start(false).await;
    let sized = |size: &str, ratio: &str| {
        let mut body = prompt("a plain one", ratio);
        body["generationConfig"]["imageConfig"]["imageSize"] = json!(size);
        body
    };
    for (size, ratio, dims) in
        [("2K", "16:9", (2752, 1536)), ("4K", "1:1", (4096, 4096)), ("1K", "1:8", (384, 3072))]
    {
        let answer = generate(&fake, NB21, &sized(size, ratio)).await.1;
        let info = sniff(&final_image(&answer)).expect("image");
        assert_eq!((info.width, info.height), dims, "{size} {ratio}");
    }
    assert_google_error(&generate(&fake, PRO, &sized("1K", "1:8")).await, 400, "INVALID_ARGUMENT");

    fake.set_shrink(true);
    let answer = generate(&fake, PRO, &sized("4K", "1:1")).await.1;
    let info = sniff(&final_image(&answer)).expect("image");
    assert_eq!((info.width, info.height), (1024, 1024), "asked 4K, got 1K");
    fake.set_shrink(false);

    let list = format!("{}/v1beta/models?key={}", fake.base_url(), fake.api_key());
    fake.remove_model(NB21);
    let names = get_json(&list).await.1["models"].as_array().expect("models").len();
    assert_eq!(names, 2);
    assert_google_error(&generate(&fake, NB21, &prompt("x", "1:1")).await, 404, "NOT_FOUND");
    fake.restore_model(NB21);
    assert_eq!(generate(&fake, NB21, &prompt("x", "1:1")).await.0, 200);
    // Paged as Google pages it.
    let first = get_json(&format!("{list}&pageSize=2")).await.1;
    assert_eq!(first["models"].as_array().map(Vec::len), Some(2));
    let token = first["nextPageToken"].as_str().expect("a next page");
    let second = get_json(&format!("{list}&pageSize=2&pageToken={token}")).await.1;
    assert_eq!(second["models"][0]["name"], "models/gemini-3.1-flash-lite-image");
    assert!(second.get("nextPageToken").is_none());
}

#[tokio::test]
async fn requests_are_validated_like_gemini() {
    let fake = start(true).await;
    let mut sized = prompt("x", "1:1");
    sized["generationConfig"]["imageConfig"]["imageSize"] = json!("2K");
    assert_google_error(&generate(&fake, FLASH, &sized).await, 400, "INVALID_ARGUMENT");
    sized["generationConfig"]["imageConfig"]["imageSize"] = json!("2k");
    assert_google_error(&generate(&fake, PRO, &sized).await, 400, "INVALID_ARGUMENT");
    assert_google_error(&generate(&fake, PRO, &prompt("x", "7:5")).await, 400, "INVALID_ARGUMENT");
    let mut two = prompt("x", "1:1");
    two["generationConfig"]["candidateCount"] = json!(2);
    assert_google_error(&generate(&fake, PRO, &two).await, 400, "INVALID_ARGUMENT");
    let bad_data = json!({"contents": [{"parts": [{"text": "x"}, {"inline_data": {"mime_type": "image/png", "data": "%%%"}}]}]});
    let answer = generate(&fake, PRO, &bad_data).await;
    assert_google_error(&answer, 400, "INVALID_ARGUMENT");
    assert!(answer.1["error"]["message"].as_str().expect("message").contains("Base64 decoding failed"));
    let empty = json!({"contents": [{"parts": []}]});
    assert_google_error(&generate(&fake, PRO, &empty).await, 400, "INVALID_ARGUMENT");
    assert!(fake.requests().iter().all(|r| r.status == Some(400)));
}

#[tokio::test]
async fn reference_images_are_recorded() {
    let fake = start(true).await;
    let reference = render_png(32, 32, &seed_of(&[b"ref"]));
    let data = fakes::common::b64::encode(&reference);
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "make it blue"},
        {"inlineData": {"mimeType": "image/png", "data": data}}]}]});
    let (status, _) = generate(&fake, FLASH, &body).await;
    assert_eq!(status, 200);
    let recorded = fake.requests().pop().expect("recorded");
    assert_eq!(recorded.prompt, "make it blue");
    assert_eq!(recorded.references.len(), 1);
    let sha: String = Sha256::digest(&reference).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        (recorded.references[0].size, recorded.references[0].sha256.as_str()),
        (reference.len(), sha.as_str())
    );
}

#[tokio::test]
async fn error_behaviours_by_marker_and_by_control() {
    let fake = start(true).await;
    let limited = generate(&fake, PRO, &prompt("a cat [[429:10]]", "1:1")).await;
    assert_google_error(&limited, 429, "RESOURCE_EXHAUSTED");
    let details = limited.1["error"]["details"].as_array().expect("details");
    assert!(details.iter().any(|d| d["retryDelay"] == "10s"));
    let (status, _) =
        post_json(&format!("{}/_fake/behaviours", fake.base_url()), &json!({"behaviour": "429day"})).await;
    assert_eq!(status, 200);
    let daily = generate(&fake, PRO, &prompt("a cat", "1:1")).await;
    assert_google_error(&daily, 429, "RESOURCE_EXHAUSTED");
    let quota_id = daily.1["error"]["details"][0]["violations"][0]["quotaId"].as_str().expect("quotaId");
    assert!(quota_id.contains("PerDay"));
    assert_google_error(&generate(&fake, PRO, &prompt("[[503]]", "1:1")).await, 503, "UNAVAILABLE");
    assert_google_error(&generate(&fake, PRO, &prompt("[[500]]", "1:1")).await, 500, "INTERNAL");
    assert_google_error(&generate(&fake, PRO, &prompt("[[504]]", "1:1")).await, 504, "DEADLINE_EXCEEDED");
    assert_eq!(generate(&fake, PRO, &prompt("a cat", "1:1")).await.0, 200, "queued behaviours are used once");
}

#[tokio::test]
async fn no_image_answers_are_200s() {
    let fake = start(true).await;
    let blocked = generate(&fake, PRO, &prompt("[[blocked:SAFETY]]", "1:1")).await;
    assert_eq!(blocked.0, 200);
    assert!(blocked.1.get("candidates").is_none());
    assert_eq!(blocked.1["promptFeedback"]["blockReason"], "SAFETY");
    let safety = generate(&fake, PRO, &prompt("[[image_safety]]", "1:1")).await.1;
    assert_eq!(safety["candidates"][0]["finishReason"], "IMAGE_SAFETY");
    assert!(safety["candidates"][0].get("content").is_none());
    let no_image = generate(&fake, FLASH, &prompt("[[no_image]]", "1:1")).await.1;
    assert_eq!(no_image["candidates"][0]["finishReason"], "NO_IMAGE");
    let refusal = generate(&fake, FLASH, &prompt("[[text_only]]", "1:1")).await.1;
    let parts = refusal["candidates"][0]["content"]["parts"].as_array().expect("parts");
    assert!(parts.iter().all(|p| p.get("inlineData").is_none() && p["text"].is_string()));
}

#[tokio::test]
async fn dropped_connections_hangs_and_latency() {
    let fake = start(true).await;
    let url = format!("{}/v1beta/models/{PRO}:generateContent", fake.base_url());
    let dropped = client()
        .post(&url)
        .header("x-goog-api-key", fake.api_key())
        .json(&prompt("[[drop]]", "1:1"))
        .send()
        .await;
    let failed = match dropped {
        Err(_) => true,
        Ok(response) => response.bytes().await.is_err(),
    };
    assert!(failed, "a dropped connection is an error for the client");
    fake.queue(Behaviour::Hang, 1);
    let quick = reqwest::Client::builder().timeout(Duration::from_millis(300)).build().expect("client");
    let hung =
        quick.post(&url).header("x-goog-api-key", fake.api_key()).json(&prompt("x", "1:1")).send().await;
    assert!(hung.is_err_and(|e| e.is_timeout()));
    let recorded = fake.wait_for_requests(2, WAIT).await.expect("recorded");
    assert_eq!(recorded[1].behaviour.as_deref(), Some("hang"));
    assert_eq!(recorded[1].status, None, "a hanging request has no status");
    let started = std::time::Instant::now();
    assert_eq!(generate(&fake, PRO, &prompt("[[latency:200]] slow", "1:1")).await.0, 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn images_are_png_or_jpeg_as_with_gemini() {
    let fake = start(true).await;
    let jpeg = final_image(&generate(&fake, FLASH, &prompt("a fox [[jpeg]]", "4:3")).await.1);
    let mut decoder = jpeg_decoder::Decoder::new(jpeg.as_slice());
    let pixels = decoder.decode().expect("a decodable JPEG");
    let info = decoder.info().expect("info");
    assert_eq!((info.width, info.height, pixels.len()), (64, 47, 64 * 47 * 3));
    let png = final_image(&generate(&fake, FLASH, &prompt("a fox [[png]]", "4:3")).await.1);
    assert_eq!(sniff(&png).map(|i| i.mime), Some("image/png"));
    let mut mimes = std::collections::BTreeSet::new();
    for n in 0..8 {
        let image = final_image(&generate(&fake, FLASH, &prompt(&format!("prompt {n}"), "1:1")).await.1);
        mimes.insert(sniff(&image).map(|i| i.mime));
    }
    assert_eq!(mimes.len(), 2, "by default both formats occur: {mimes:?}");
}

#[tokio::test]
async fn http1_and_h2c_on_one_port_with_stats_of_concurrency() {
    let config = GeminiConfig { small: true, latency: Duration::from_secs(1), ..GeminiConfig::default() };
    let fake = FakeGemini::start(config).await.expect("start fake gemini");
    let url = format!("{}/v1beta/models/{FLASH}:generateContent", fake.base_url());
    let h2c = reqwest::Client::builder().http2_prior_knowledge().build().expect("h2c client");
    let calls = (0..3).map(|n| {
        let (h2c, url, key) = (h2c.clone(), url.clone(), fake.api_key().to_owned());
        async move {
            let body = prompt(&format!("fox {n}"), "1:1");
            h2c.post(url).header("x-goog-api-key", key).json(&body).send().await.expect("h2c").status()
        }
    });
    let statuses = futures_util::future::join_all(calls).await;
    assert!(statuses.iter().all(|s| s.as_u16() == 200), "{statuses:?}");
    assert_eq!(generate(&fake, FLASH, &prompt("over HTTP/1.1", "1:1")).await.0, 200);

    let stats: Value = client()
        .get(format!("{}/_fake/stats", fake.base_url()))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    assert_eq!(
        stats,
        json!({"in_flight": 0, "peak_in_flight": 3, "http1_calls": 1, "http2_calls": 3,
        "connections": 3}),
        "one h2c connection for three calls; HTTP/1.1 for the rest"
    );
    let versions: Vec<_> = fake.requests().into_iter().map(|r| r.http_version).collect();
    assert_eq!(versions, ["HTTP/2.0", "HTTP/2.0", "HTTP/2.0", "HTTP/1.1"]);
    client().delete(format!("{}/_fake/stats", fake.base_url())).send().await.expect("reset");
    assert_eq!((fake.stats().peak_in_flight, fake.stats().http2_calls), (0, 0));
}
