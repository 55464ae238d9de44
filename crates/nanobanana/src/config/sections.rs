//! The configuration's sections beyond the core: Telegram, Gemini, YooKassa, packs,
//! the exchange rate, limits and the operator's details, each read and validated from the environment.

use std::path::PathBuf;

use ipnet::IpNet;

use super::default_url;
use super::env::{list, url_with_scheme, Env};
use crate::domain::{Credits, Kopecks, TelegramId};
use crate::secret::Secret;

/// Where images are stored: a local directory (default `./data/images`) or an S3 bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageLocation {
    Local(PathBuf),
    S3 { bucket: String, prefix: String },
}

impl Default for StorageLocation {
    fn default() -> Self {
        Self::Local(PathBuf::from("./data/images"))
    }
}

impl StorageLocation {
    /// `file:///abs/path`, `file://./relative/path` or `s3://bucket/prefix`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if let Some(path) = raw.strip_prefix("file://") {
            if path.is_empty() {
                return Err("file:// needs a directory".to_owned());
            }
            Ok(Self::Local(PathBuf::from(path)))
        } else if let Some(rest) = raw.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err("s3:// needs a bucket name".to_owned());
            }
            Ok(Self::S3 { bucket: bucket.to_owned(), prefix: prefix.trim_matches('/').to_owned() })
        } else {
            Err("expected file://DIRECTORY or s3://BUCKET/PREFIX".to_owned())
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TelegramMode {
    Webhook,
    Polling,
}

#[derive(Debug, Clone)]
pub struct TelegramConfig {
    pub bot_token: Secret<String>,
    /// Required in webhook mode: Telegram sends it back in `X-Telegram-Bot-Api-Secret-Token`.
    pub webhook_secret: Option<Secret<String>>,
    pub mode: TelegramMode,
    /// With it, `serve` registers its webhook at `{PUBLIC_BASE_URL}/telegram/webhook`.
    pub public_base_url: Option<url::Url>,
    pub api_url: url::Url,
    /// May carry a password (`http://user:pass@host`), hence secret.
    pub proxy: Option<Secret<url::Url>>,
    /// `TELEGRAM_TRUSTED_NETWORKS`: when not empty, the webhook answers only these senders.
    pub trusted_networks: Vec<IpNet>,
    /// `TRUSTED_PROXIES`: reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
}

#[derive(Debug, Clone)]
pub struct GeminiConfig {
    pub api_key: Secret<String>,
    pub api_url: url::Url,
    /// May carry a password, hence secret.
    pub proxy: Option<Secret<url::Url>>,
    pub max_concurrency: u32,
    pub requests_per_minute: u32,
    pub timeout_secs: u32,
    /// `GEMINI_HTTP_VERSION`: how the client chooses between HTTP/1.1 and HTTP/2.
    pub http_version: HttpVersion,
    /// `GEMINI_STREAMS_PER_CONNECTION`: HTTP/2 calls one connection carries at once before the
    /// client opens another.
    pub streams_per_connection: u32,
    /// `MODEL_PROBE_SECS`: how often the worker checks the catalog's ids with `GET /v1beta/models`.
    pub model_probe_secs: u32,
}

/// Which HTTP the Gemini client speaks. The rule for `http://` URLs is explicit because
/// HTTP/2 there (h2c) cannot be negotiated: the client must know the server speaks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpVersion {
    /// `https://`: HTTP/2 when TLS negotiates it (ALPN; Google does), else HTTP/1.1.
    /// `http://`: HTTP/1.1.
    Auto,
    /// HTTP/1.1 only: one connection per call in flight.
    Http1,
    /// HTTP/2 only: `https://` requires h2 from ALPN; `http://` speaks h2c with prior knowledge
    /// (the fake Gemini does). Not through an HTTP proxy to an `http://` URL.
    Http2,
}

impl HttpVersion {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "auto" => Ok(Self::Auto),
            "http1" => Ok(Self::Http1),
            "http2" => Ok(Self::Http2),
            other => Err(format!("{other:?} is none of auto, http1, http2")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct YooKassaConfig {
    pub shop_id: String,
    pub secret_key: Secret<String>,
    pub api_url: url::Url,
    pub return_url: Option<url::Url>,
    /// Notifications are accepted only from these networks.
    pub trusted_networks: Vec<IpNet>,
    /// Reverse proxies whose `X-Forwarded-For` we believe.
    pub trusted_proxies: Vec<IpNet>,
    /// 54-FZ receipts; `None` when disabled.
    pub receipt: Option<ReceiptConfig>,
}

#[derive(Debug, Clone)]
pub struct ReceiptConfig {
    pub item_description: String,
    pub vat_code: u32,
    pub payment_subject: String,
    pub payment_mode: String,
}

/// One pack a user can buy: `price` in the currency's smallest unit (kopecks or Stars).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pack {
    pub id: String,
    pub price: i64,
    pub credits: Credits,
}

#[derive(Debug, Clone)]
pub struct Packs {
    pub rub: Vec<Pack>,
    pub stars: Vec<Pack>,
}

/// Prices and costs are the catalog's (`Config::catalog`); this is how they compare.
#[derive(Debug, Clone)]
pub struct Pricing {
    /// Kopecks per US dollar.
    pub usd_rate: Kopecks,
}

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_in_flight: u32,
    pub daily_generations: u32,
    pub max_prompt_chars: u32,
    pub generation_deadline_secs: u32,
    /// Replies a user's messages may cause per minute (`REPLY_BUDGET_PER_MINUTE`; 0: no limit).
    pub replies_per_minute: u32,
    /// The longest wait between tries of a failed Telegram send (`OUTBOX_RETRY_CAP_MS`).
    pub outbox_retry_cap_ms: u32,
    /// `INTAKE_FAST_PATH` (on): plain prompts, `/start`, `/help` in two round trips (`bot::fast`).
    pub intake_fast_path: bool,
    /// `WORKER_MEMORY_BUDGET_MB`: reference photos a worker holds at once.
    pub worker_memory_budget_mb: u32,
}

#[derive(Debug, Clone)]
pub struct OperatorConfig {
    pub admin_ids: Vec<TelegramId>,
    pub support_contact: String,
    pub terms_url: Option<url::Url>,
    pub privacy_url: Option<url::Url>,
    pub terms_version: String,
    pub examples_url: Option<url::Url>,
}

/// YooKassa's published notification sources (its documentation, 2026).
pub const YOOKASSA_NETWORKS: &str = "185.71.76.0/27,185.71.77.0/27,77.75.153.0/25,77.75.156.11/32,\
77.75.156.35/32,77.75.154.128/25,2a02:5180::/32";

/// Telegram's published webhook sources (core.telegram.org/bots/webhooks, 2026):
/// what `TELEGRAM_TRUSTED_NETWORKS=telegram` stands for.
pub const TELEGRAM_NETWORKS: &str = "149.154.160.0/20,91.108.4.0/22";

/// The shortest `TELEGRAM_WEBHOOK_SECRET` accepted: it is the only barrier before admin commands.
pub const MIN_WEBHOOK_SECRET: usize = 32;

const PROXY_SCHEMES: &[&str] = &["http", "https", "socks5", "socks5h"];
const WEB_SCHEMES: &[&str] = &["http", "https"];

pub(super) fn web_url(raw: &str) -> Result<url::Url, String> {
    url_with_scheme(raw, WEB_SCHEMES)
}

fn proxy_url(raw: &str) -> Result<Secret<url::Url>, String> {
    url_with_scheme(raw, PROXY_SCHEMES).map(Secret::new)
}

/// A list of networks in which no entry is a catch-all (`0.0.0.0/0`, `::/0`): trusting every
/// address is never what an operator meant.
pub(super) fn networks(raw: &str) -> Result<Vec<IpNet>, String> {
    let networks = list(raw, str::parse::<IpNet>)?;
    match networks.iter().find(|net| net.prefix_len() == 0) {
        Some(all) => Err(format!("{all} is every address; name the networks themselves")),
        None => Ok(networks),
    }
}

/// `TRUSTED_PROXIES`, read once for every webhook.
pub(super) fn trusted_proxies(env: &mut Env) -> Vec<IpNet> {
    env.or("TRUSTED_PROXIES", Vec::new(), networks)
}

fn non_empty_secret(raw: &str) -> Result<Secret<String>, String> {
    Ok(Secret::new(raw.to_owned()))
}

pub(super) fn telegram(env: &mut Env, purpose: &str, trusted_proxies: &[IpNet]) -> Option<TelegramConfig> {
    let bot_token = env.required("TELEGRAM_BOT_TOKEN", purpose, |raw| {
        let (id, rest) = raw.split_once(':').ok_or("expected the form 123456:ABC… from @BotFather")?;
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) || rest.is_empty() {
            return Err("expected the form 123456:ABC… from @BotFather");
        }
        Ok(Secret::new(raw.to_owned()))
    });
    let mode = env.or("TELEGRAM_MODE", TelegramMode::Webhook, |raw| match raw {
        "webhook" => Ok(TelegramMode::Webhook),
        "polling" => Ok(TelegramMode::Polling),
        other => Err(format!("{other:?} is neither webhook nor polling")),
    });
    let parse_secret = |raw: &str| {
        let valid = (MIN_WEBHOOK_SECRET..=256).contains(&raw.len())
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if valid {
            Ok(Secret::new(raw.to_owned()))
        } else {
            Err("32–256 characters of A-Z, a-z, 0-9, _ and - (`nanobanana webhook-secret` prints a fresh one)")
        }
    };
    let webhook_secret = match mode {
        TelegramMode::Webhook => env.required("TELEGRAM_WEBHOOK_SECRET", "in webhook mode", parse_secret),
        TelegramMode::Polling => env.optional("TELEGRAM_WEBHOOK_SECRET", parse_secret),
    };
    let public_base_url = env.optional("PUBLIC_BASE_URL", web_url);
    let api_url = env.or("TELEGRAM_API_URL", default_url("https://api.telegram.org"), web_url);
    let proxy = env.optional("TELEGRAM_PROXY", proxy_url);
    let trusted_networks = env.or("TELEGRAM_TRUSTED_NETWORKS", Vec::new(), |raw| match raw {
        "telegram" => networks(TELEGRAM_NETWORKS),
        raw => networks(raw),
    });
    Some(TelegramConfig {
        bot_token: bot_token?,
        webhook_secret,
        mode,
        public_base_url,
        api_url,
        proxy,
        trusted_networks,
        trusted_proxies: trusted_proxies.to_vec(),
    })
}

pub(super) fn gemini(env: &mut Env, purpose: &str) -> Option<GeminiConfig> {
    let api_key = env.required("GEMINI_API_KEY", purpose, non_empty_secret);
    let api_url = env.or("GEMINI_API_URL", default_url("https://generativelanguage.googleapis.com"), web_url);
    let proxy = env.optional("GEMINI_PROXY", proxy_url);
    let max_concurrency = env.number("GEMINI_MAX_CONCURRENCY", 4, 1..=256);
    let requests_per_minute = env.number("GEMINI_RPM", 60, 1..=100_000);
    let timeout_secs = env.number("GEMINI_TIMEOUT_SECS", 300, 10..=3600);
    let http_version = env.or("GEMINI_HTTP_VERSION", HttpVersion::Auto, HttpVersion::parse);
    let streams_per_connection = env.number("GEMINI_STREAMS_PER_CONNECTION", 100, 1..=10_000);
    let model_probe_secs = env.number("MODEL_PROBE_SECS", 300, 10..=86_400);
    let plain_proxy = proxy.as_ref().is_some_and(|p| p.expose().scheme().starts_with("http"));
    if http_version == HttpVersion::Http2 && api_url.scheme() == "http" && plain_proxy {
        // An HTTP proxy forwards an http:// request as HTTP/1.1; h2c would reach it, not Gemini.
        env.fail(
            "GEMINI_HTTP_VERSION",
            "http2 with an http:// GEMINI_API_URL cannot go through an HTTP proxy",
        );
    }
    Some(GeminiConfig {
        api_key: api_key?,
        api_url,
        proxy,
        max_concurrency,
        requests_per_minute,
        timeout_secs,
        http_version,
        streams_per_connection,
        model_probe_secs,
    })
}

pub(super) fn yookassa(env: &mut Env, trusted_proxies: &[IpNet]) -> Option<YooKassaConfig> {
    let trusted_networks = env.or("YOOKASSA_TRUSTED_NETWORKS", Vec::new(), networks);
    let trusted_networks = if trusted_networks.is_empty() {
        list(YOOKASSA_NETWORKS, str::parse::<IpNet>).unwrap_or_default()
    } else {
        trusted_networks
    };
    let trusted_proxies = trusted_proxies.to_vec();
    let receipt = env.value("RECEIPTS_ENABLED", false).then(|| ReceiptConfig {
        item_description: env
            .raw("RECEIPT_ITEM_DESCRIPTION")
            .unwrap_or_else(|| "Пакет кредитов для генерации изображений".to_owned()),
        vat_code: env.number("RECEIPT_VAT_CODE", 1, 1..=12),
        payment_subject: env.raw("RECEIPT_PAYMENT_SUBJECT").unwrap_or_else(|| "service".to_owned()),
        payment_mode: env.raw("RECEIPT_PAYMENT_MODE").unwrap_or_else(|| "full_payment".to_owned()),
    });
    let api_url = env.or("YOOKASSA_API_URL", default_url("https://api.yookassa.ru/v3"), web_url);
    let return_url = env.optional("YOOKASSA_RETURN_URL", web_url);
    match (env.raw("YOOKASSA_SHOP_ID"), env.raw("YOOKASSA_SECRET_KEY")) {
        (Some(shop_id), Some(secret_key)) => Some(YooKassaConfig {
            shop_id,
            secret_key: Secret::new(secret_key),
            api_url,
            return_url,
            trusted_networks,
            trusted_proxies,
            receipt,
        }),
        (None, None) => None,
        (Some(_), None) => {
            env.fail("YOOKASSA_SECRET_KEY", "is required when YOOKASSA_SHOP_ID is set");
            None
        }
        (None, Some(_)) => {
            env.fail("YOOKASSA_SHOP_ID", "is required when YOOKASSA_SECRET_KEY is set");
            None
        }
    }
}

/// `PRICE:CREDITS` pairs; `price` parses the left side into the smallest unit.
fn pack_list(raw: &str, prefix: &str, price: fn(&str) -> Result<i64, String>) -> Result<Vec<Pack>, String> {
    let packs = list(raw, |item| {
        let (left, right) = item.split_once(':').ok_or("expected PRICE:CREDITS")?;
        let price = price(left)?;
        if price <= 0 {
            return Err("the price must be positive".to_owned());
        }
        let credits = Credits::parse(right).map_err(|e| e.to_string())?;
        Ok(Pack { id: format!("{prefix}{}", credits.get()), price, credits })
    })?;
    let mut ids: Vec<_> = packs.iter().map(|p| &p.id).collect();
    ids.sort();
    ids.dedup();
    if ids.len() != packs.len() {
        return Err("two packs give the same number of credits".to_owned());
    }
    Ok(packs)
}

pub(super) fn packs(env: &mut Env) -> Packs {
    let rubles = |raw: &str| Kopecks::parse_rubles(raw).map(Kopecks::get).map_err(|e| e.to_string());
    let stars = |raw: &str| raw.trim().parse::<i64>().map_err(|e| format!("{raw:?}: {e}"));
    let default_rub = pack_list("100:100,200:200,300:300", "rub", rubles).unwrap_or_default();
    let default_stars = pack_list("80:100,160:200,240:300", "xtr", stars).unwrap_or_default();
    Packs {
        rub: env.or("RUB_PACKS", default_rub, |raw| pack_list(raw, "rub", rubles)),
        stars: env.or("STARS_PACKS", default_stars, |raw| pack_list(raw, "xtr", stars)),
    }
}

pub(super) fn pricing(env: &mut Env) -> Pricing {
    let default_rate = Kopecks::parse_rubles("100").unwrap_or_else(|e| unreachable!("default rate: {e}"));
    let usd_rate = env.or("USD_RUB_RATE", default_rate, |raw| {
        let rate = Kopecks::parse_rubles(raw).map_err(|e| e.to_string())?;
        if rate.get() == 0 {
            return Err("the rate must be positive".to_owned());
        }
        Ok(rate)
    });
    Pricing { usd_rate }
}

pub(super) fn limits(env: &mut Env) -> Limits {
    Limits {
        max_in_flight: env.number("MAX_IN_FLIGHT", 4, 1..=100),
        daily_generations: env.number("DAILY_GENERATION_CAP", 100, 1..=100_000),
        max_prompt_chars: env.number("MAX_PROMPT_CHARS", 2000, 1..=10_000),
        generation_deadline_secs: env.number("GENERATION_DEADLINE_SECS", 900, 60..=86_400),
        replies_per_minute: env.number("REPLY_BUDGET_PER_MINUTE", 30, 0..=10_000),
        outbox_retry_cap_ms: env.number("OUTBOX_RETRY_CAP_MS", 60_000, 10..=3_600_000),
        intake_fast_path: env.value("INTAKE_FAST_PATH", true),
        worker_memory_budget_mb: env.number("WORKER_MEMORY_BUDGET_MB", 512, 32..=1_048_576),
    }
}

pub(super) fn operator(env: &mut Env) -> OperatorConfig {
    OperatorConfig {
        admin_ids: env.or("ADMIN_IDS", Vec::new(), |raw| list(raw, str::parse::<TelegramId>)),
        support_contact: env.raw("SUPPORT_CONTACT").unwrap_or_default(),
        terms_url: env.optional("TERMS_URL", web_url),
        privacy_url: env.optional("PRIVACY_URL", web_url),
        terms_version: env.raw("TERMS_VERSION").unwrap_or_else(|| "1".to_owned()),
        examples_url: env.optional("EXAMPLES_URL", web_url),
    }
}
