use std::collections::HashMap;

use super::*;

fn load(role: Role, vars: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
    let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::from_lookup(role, &move |var| map.get(var).cloned())
}

fn errors(role: Role, vars: &[(&str, &str)]) -> ConfigErrors {
    match load(role, vars) {
        Ok(_) => panic!("configuration {vars:?} was accepted"),
        Err(errors) => errors,
    }
}

const SERVE: &[(&str, &str)] = &[
    ("TELEGRAM_BOT_TOKEN", "123456:ABC-def"),
    ("TELEGRAM_WEBHOOK_SECRET", "s3cr3t_-0123456789abcdefghijklmnopq"),
];

#[test]
fn an_empty_environment_works_for_tools_on_a_developer_machine() {
    let config = load(Role::Tool, &[]).expect("defaults are valid");
    assert_eq!(config.database.url.expose().as_str(), DEFAULT_DATABASE_URL);
    assert_eq!(config.redis.url.expose().as_str(), "redis://127.0.0.1:6379");
    assert_eq!(config.listen_addr.to_string(), "0.0.0.0:8080");
    assert!(config.telegram.is_none() && config.gemini.is_none() && config.yookassa.is_none());
    assert_eq!(config.packs.rub.len(), 3);
    assert_eq!(config.packs.rub[0].price, 10_000);
    assert_eq!(config.catalog.default_model().price(crate::domain::ImageSize::K1).get(), 10);
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    assert!(config.prices_below_cost().is_empty(), "{:?}", config.prices_below_cost());
}

#[test]
fn a_missing_required_variable_is_named() {
    let errors = errors(Role::Serve, &[]);
    assert!(errors.names("TELEGRAM_BOT_TOKEN"), "{errors}");
    assert!(errors.to_string().contains("TELEGRAM_BOT_TOKEN: is required for `serve`"), "{errors}");
    let errors = self::errors(Role::Worker, &[]);
    assert!(errors.names("GEMINI_API_KEY"), "{errors}");
    let errors = self::errors(Role::Serve, &[("TELEGRAM_BOT_TOKEN", "123456:ABC")]);
    assert!(errors.names("TELEGRAM_WEBHOOK_SECRET"), "{errors}");
    assert!(load(Role::Serve, SERVE).is_ok());
}

#[test]
fn a_malformed_url_is_named() {
    let errors = errors(Role::Tool, &[("DATABASE_URL", "not a url")]);
    assert!(errors.names("DATABASE_URL"), "{errors}");
    assert!(errors.to_string().contains("DATABASE_URL: malformed value"), "{errors}");
    let errors = self::errors(Role::Tool, &[("REDIS_URL", "http://127.0.0.1:6379")]);
    assert!(errors.names("REDIS_URL"), "{errors}");
    let errors = self::errors(Role::Tool, &[("DATABASE_URL", "postgres://127.0.0.1:5432")]);
    assert!(errors.names("DATABASE_URL"), "a URL without a database name: {errors}");
}

#[test]
fn a_negative_price_is_named() {
    let errors = errors(Role::Tool, &[("PRICE_FLASH", "-10")]);
    assert!(errors.names("PRICE_FLASH"), "{errors}");
    assert!(errors.to_string().contains("positive"), "{errors}");
    let errors = self::errors(Role::Tool, &[("PRICE_PRO_4K", "0"), ("COST_PRO_4K_USD", "-0.24")]);
    assert!(errors.names("PRICE_PRO_4K") && errors.names("COST_PRO_4K_USD"), "{errors}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let errors = errors(
        Role::Run,
        &[("LOG_FORMAT", "xml"), ("MAX_IN_FLIGHT", "0"), ("RUB_PACKS", "100:100,abc"), ("PORT", "http")],
    );
    for var in ["TELEGRAM_BOT_TOKEN", "GEMINI_API_KEY", "LOG_FORMAT", "MAX_IN_FLIGHT", "RUB_PACKS", "PORT"] {
        assert!(errors.names(var), "{var} missing from {errors}");
    }
}

#[test]
fn port_is_used_only_without_listen_addr() {
    let config = load(Role::Tool, &[("PORT", "3000")]).unwrap();
    assert_eq!(config.listen_addr.to_string(), "0.0.0.0:3000");
    let config = load(Role::Tool, &[("PORT", "3000"), ("LISTEN_ADDR", "127.0.0.1:9000")]).unwrap();
    assert_eq!(config.listen_addr.to_string(), "127.0.0.1:9000");
}

#[test]
fn secrets_never_print() {
    let mut vars = SERVE.to_vec();
    vars.extend([
        ("GEMINI_API_KEY", "AIza-very-secret"),
        ("YOOKASSA_SHOP_ID", "123"),
        ("YOOKASSA_SECRET_KEY", "live_topsecret"),
        ("DATABASE_URL", "postgres://app:hunter2@db:5432/nb"),
        ("TELEGRAM_PROXY", "http://tg:proxypass1@proxy:3128"),
        ("GEMINI_PROXY", "socks5://gm:proxypass2@proxy:1080"),
        ("METRICS_TOKEN", "metrics-token-0123456789abcdefghijkl"),
    ]);
    let config = load(Role::Run, &vars).unwrap();
    let printed = format!("{config:?}");
    for secret in [
        "ABC-def",
        "s3cr3t_-",
        "AIza-very-secret",
        "live_topsecret",
        "hunter2",
        "proxypass1",
        "proxypass2",
        "metrics-token",
    ] {
        assert!(!printed.contains(secret), "{secret} printed in {printed}");
    }
}

#[test]
fn a_short_webhook_secret_is_refused() {
    let short = [SERVE[0], ("TELEGRAM_WEBHOOK_SECRET", "x")];
    let errors = errors(Role::Serve, &short);
    assert!(errors.names("TELEGRAM_WEBHOOK_SECRET"), "{errors}");
    let almost = [SERVE[0], ("TELEGRAM_WEBHOOK_SECRET", "0123456789012345678901234567890")];
    assert!(self::errors(Role::Serve, &almost).names("TELEGRAM_WEBHOOK_SECRET"));
    let exact = [SERVE[0], ("TELEGRAM_WEBHOOK_SECRET", "01234567890123456789012345678901")];
    assert!(load(Role::Serve, &exact).is_ok());
}

#[test]
fn catch_all_networks_are_refused() {
    for all in ["0.0.0.0/0", "10.0.0.0/8, ::/0"] {
        let errors = errors(Role::Tool, &[("TRUSTED_PROXIES", all)]);
        assert!(errors.names("TRUSTED_PROXIES"), "{all}: {errors}");
        let errors = self::errors(Role::Tool, &[("YOOKASSA_TRUSTED_NETWORKS", all)]);
        assert!(errors.names("YOOKASSA_TRUSTED_NETWORKS"), "{all}: {errors}");
        let mut vars = SERVE.to_vec();
        vars.push(("TELEGRAM_TRUSTED_NETWORKS", all));
        assert!(self::errors(Role::Serve, &vars).names("TELEGRAM_TRUSTED_NETWORKS"), "{all}");
    }
}

#[test]
fn telegram_networks_are_opt_in() {
    let config = load(Role::Serve, SERVE).unwrap();
    assert!(config.telegram.unwrap().trusted_networks.is_empty());
    let mut vars = SERVE.to_vec();
    vars.extend([("TELEGRAM_TRUSTED_NETWORKS", "telegram"), ("TRUSTED_PROXIES", "10.0.0.0/8")]);
    let telegram = load(Role::Serve, &vars).unwrap().telegram.unwrap();
    assert_eq!(telegram.trusted_networks.len(), 2);
    assert_eq!(telegram.trusted_proxies.len(), 1);
}

#[test]
fn plain_http_apis_are_flagged_unless_loopback() {
    let mut vars = SERVE.to_vec();
    vars.extend([("GEMINI_API_KEY", "k"), ("GEMINI_API_URL", "http://127.0.0.1:9000")]);
    let local = [vars.clone(), vec![("TELEGRAM_API_URL", "http://localhost:8081")]].concat();
    assert!(load(Role::Run, &local).unwrap().plain_http_apis().is_empty());
    vars.push(("TELEGRAM_API_URL", "http://tg.example.com"));
    let warnings = load(Role::Run, &vars).unwrap().plain_http_apis();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("TELEGRAM_API_URL"), "{warnings:?}");
}

#[test]
fn packs_trusted_networks_and_storage_parse() {
    let config = load(
        Role::Tool,
        &[
            ("RUB_PACKS", "99.90:100, 500:550"),
            ("STARS_PACKS", "50:60"),
            ("YOOKASSA_SHOP_ID", "42"),
            ("YOOKASSA_SECRET_KEY", "test_x"),
            ("TRUSTED_PROXIES", "10.0.0.0/8"),
            ("STORAGE_URL", "s3://bucket/images/"),
            ("ADMIN_IDS", "1, 2"),
        ],
    )
    .unwrap();
    assert_eq!(config.packs.rub[0].price, 9_990);
    assert_eq!(config.packs.rub[1].credits.get(), 550);
    assert_eq!(config.packs.stars[0].id, "xtr60");
    let yookassa = config.yookassa.unwrap();
    assert_eq!(yookassa.trusted_networks.len(), 7);
    assert_eq!(yookassa.trusted_proxies.len(), 1);
    assert_eq!(config.storage, StorageLocation::S3 { bucket: "bucket".into(), prefix: "images".into() });
    assert_eq!(config.operator.admin_ids, vec![1, 2]);
    let errors = errors(Role::Tool, &[("YOOKASSA_SHOP_ID", "42")]);
    assert!(errors.names("YOOKASSA_SECRET_KEY"), "{errors}");
}

#[test]
fn gemini_http_version_is_explicit_for_plain_http() {
    let key = ("GEMINI_API_KEY", "k");
    let gemini = |vars: &[(&str, &str)]| load(Role::Worker, vars).unwrap().gemini.unwrap();
    let default = gemini(&[key]);
    assert_eq!(default.http_version, HttpVersion::Auto);
    assert_eq!(default.streams_per_connection, 100);
    let h2c = gemini(&[key, ("GEMINI_API_URL", "http://127.0.0.1:8082"), ("GEMINI_HTTP_VERSION", "http2")]);
    assert_eq!(h2c.http_version, HttpVersion::Http2);
    let unknown = errors(Role::Worker, &[key, ("GEMINI_HTTP_VERSION", "h3")]);
    assert!(unknown.names("GEMINI_HTTP_VERSION"), "{unknown}");
    let through_proxy = [
        key,
        ("GEMINI_API_URL", "http://127.0.0.1:8082"),
        ("GEMINI_HTTP_VERSION", "http2"),
        ("GEMINI_PROXY", "http://proxy:3128"),
    ];
    assert!(errors(Role::Worker, &through_proxy).names("GEMINI_HTTP_VERSION"));
    let socks =
        [through_proxy[0], through_proxy[1], through_proxy[2], ("GEMINI_PROXY", "socks5://proxy:1080")];
    assert_eq!(gemini(&socks).http_version, HttpVersion::Http2);
}

#[test]
fn prices_below_provider_cost_are_flagged() {
    let config = load(Role::Tool, &[("PRICE_PRO_4K", "10"), ("USD_RUB_RATE", "90")]).unwrap();
    let warnings = config.prices_below_cost();
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].to_string().contains("pro 4K"), "{}", warnings[0]);
}

#[test]
fn env_example_documents_every_variable_read() {
    let asked = std::cell::RefCell::new(std::collections::BTreeSet::new());
    let lookup = |var: &str| {
        asked.borrow_mut().insert(var.to_owned());
        None
    };
    // Run enables every optional section, so every variable is asked for.
    let _ = Config::from_lookup(Role::Run, &lookup);
    let example = include_str!("../../../../.env.example");
    let documented: Vec<&str> = example
        .lines()
        .map(|line| line.trim_start_matches("# "))
        .filter_map(|line| line.split_once('=').map(|(name, _)| name))
        .collect();
    let missing: Vec<_> =
        asked.borrow().iter().filter(|v| !documented.contains(&v.as_str())).cloned().collect();
    assert!(missing.is_empty(), ".env.example lacks {missing:?}");
}

fn catalog_json(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut models = serde_json::json!([
        {"key": "pro", "id": "gemini-3-pro-image", "name": {"ru": "Про", "en": "Pro"},
         "sizes": ["1K", "4K"], "ratios": ["1:1", "16:9"], "max_references": 14,
         "price": {"1K": 20, "4K": 35}, "cost_usd": {"1K": "0.134", "4K": "0.24"}},
        {"key": "nb21", "id": "gemini-nano-banana-2.1", "name": {"ru": "2.1", "en": "2.1"},
         "sizes": ["1K"], "ratios": ["1:1", "1:8"], "max_references": 14,
         "price": {"1K": 10}, "cost_usd": {"1K": "0.034"}, "default": true, "aliases": ["flash"]}
    ]);
    edit(&mut models);
    models.to_string()
}

fn catalog_errors(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    errors(Role::Tool, &[("MODEL_CATALOG", &catalog_json(edit))]).to_string()
}

#[test]
fn a_catalog_is_read_from_the_variable_or_a_file() {
    let inline = catalog_json(|_| {});
    let config = load(Role::Tool, &[("MODEL_CATALOG", &inline)]).expect("valid");
    assert_eq!(config.catalog.models().len(), 2);
    assert_eq!(config.catalog.default_model().id, "gemini-nano-banana-2.1");
    let path = std::env::temp_dir().join(format!("catalog-{}.json", std::process::id()));
    std::fs::write(&path, &inline).expect("write");
    let config = load(Role::Tool, &[("MODEL_CATALOG", path.to_str().expect("utf-8"))]).expect("valid");
    assert_eq!(config.catalog.models()[0].key.as_str(), "pro");
    let _ = std::fs::remove_file(&path);
    let missing = errors(Role::Tool, &[("MODEL_CATALOG", "/nonexistent/catalog.json")]);
    assert!(missing.to_string().contains("MODEL_CATALOG: cannot read the catalog file"), "{missing}");
}

#[test]
fn each_catalog_problem_names_its_model_and_field() {
    let duplicate = catalog_errors(|m| m[1]["key"] = "pro".into());
    assert!(duplicate.contains("MODEL_CATALOG: model pro: key: duplicate key"), "{duplicate}");
    let size = catalog_errors(|m| m[0]["sizes"] = serde_json::json!(["1K", "3K"]));
    assert!(size.contains("model pro: sizes: unknown image size \"3K\""), "{size}");
    let ratio = catalog_errors(|m| m[0]["ratios"] = serde_json::json!(["1:1", "1:8"]));
    assert!(ratio.contains("model pro: ratios: 1:8 is a ratio gemini-3-pro-image does not take"), "{ratio}");
    let price = catalog_errors(|m| {
        m[0]["price"].as_object_mut().map(|p| p.remove("4K"));
    });
    assert!(price.contains("model pro: price: missing price for 4K"), "{price}");
    let field = catalog_errors(|m| m[0]["colour"] = "red".into());
    assert!(field.contains("MODEL_CATALOG: not a JSON array of models: unknown field `colour`"), "{field}");
}

#[test]
fn a_catalog_price_below_cost_is_a_warning_per_size() {
    let cheap = catalog_json(|m| m[0]["price"] = serde_json::json!({"1K": 5, "4K": 35}));
    let config = load(Role::Tool, &[("MODEL_CATALOG", &cheap), ("USD_RUB_RATE", "100")])
        .expect("a warning, not an error");
    let warnings: Vec<String> = config.prices_below_cost().iter().map(ToString::to_string).collect();
    assert_eq!(warnings, ["price of pro 1K is 5 credits (₽) but the provider charges 13.40 ₽"]);
}

#[test]
fn the_deprecated_variables_are_mapped_onto_the_catalog_with_a_warning() {
    let config = load(
        Role::Tool,
        &[("PRICE_PRO_2K", "30"), ("GEMINI_MODEL_FLASH", "gemini-3.1-flash-image"), ("PRICE_FLASH", "12")],
    )
    .expect("valid");
    let pro = config.catalog.find("pro").expect("pro");
    assert_eq!(pro.price(crate::domain::ImageSize::K2).get(), 30);
    let flash = config.catalog.find("flash").expect("the Flash of the previous release");
    assert_eq!(
        (flash.id.as_str(), flash.offers.len(), flash.takes_size),
        ("gemini-3.1-flash-image", 1, false)
    );
    assert_eq!(flash.price(crate::domain::ImageSize::K1).get(), 12);
    assert_eq!(config.warnings.len(), 3, "{:?}", config.warnings);
    assert!(config.warnings.iter().all(|w| w.contains("deprecated")), "{:?}", config.warnings);
    let ignored =
        load(Role::Tool, &[("MODEL_CATALOG", &catalog_json(|_| {})), ("PRICE_FLASH", "12")]).expect("valid");
    assert_eq!(ignored.warnings, ["PRICE_FLASH is deprecated and ignored: MODEL_CATALOG is set"]);
}

#[test]
fn operator_timezone_star_rate_and_report_hour() {
    let config = load(Role::Tool, &[]).unwrap();
    assert_eq!(config.operator.timezone, "UTC");
    assert_eq!(config.operator.daily_report_hour, None);
    assert_eq!(config.pricing.star_rate.get(), 130);
    let config = load(
        Role::Tool,
        &[("OPERATOR_TIMEZONE", "Europe/Moscow"), ("DAILY_REPORT_HOUR", "9"), ("STAR_RUB_RATE", "1.79")],
    )
    .unwrap();
    assert_eq!(config.operator.timezone, "Europe/Moscow");
    assert_eq!(config.operator.daily_report_hour, Some(9));
    assert_eq!(config.pricing.star_rate.get(), 179);
    let bad = errors(
        Role::Tool,
        &[("OPERATOR_TIMEZONE", "Moscow; DROP"), ("DAILY_REPORT_HOUR", "24"), ("STAR_RUB_RATE", "1.333")],
    )
    .to_string();
    for var in ["OPERATOR_TIMEZONE", "DAILY_REPORT_HOUR", "STAR_RUB_RATE"] {
        assert!(bad.contains(var), "{var} is named in {bad}");
    }
}
