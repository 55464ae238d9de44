//! The command line as an operator uses it: `migrate`, `admin grant|deduct|show`, and
//! configuration errors, each run as the real binary against a test database.

use std::process::Output;

use sqlx::Connection;

use crate::support::{server_url, TestDb};

const USER: i64 = 3001;

fn nanobanana(database_url: &str, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_nanobanana"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .env_remove("LOG_FORMAT")
        .env_remove("LOG_DIR")
        .output()
        .expect("run nanobanana")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[tokio::test]
async fn grant_deduct_and_show_move_credits_once_per_key() {
    let db = TestDb::new().await;
    db.user(USER).await;
    let url = db.url.as_str();
    let user = USER.to_string();
    let grant = [
        "admin",
        "grant",
        "--user",
        &user,
        "--credits",
        "50",
        "--reason",
        "welcome",
        "--idempotency-key",
        "g1",
    ];
    let first = nanobanana(url, &grant);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert!(text(&first).contains("granted 50 credits for user 3001: available 50"), "{}", text(&first));
    let again = nanobanana(url, &grant);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(text(&again).contains("already applied"), "{}", text(&again));
    assert_eq!(db.balance(USER).await, (50, 0));

    let deduct =
        nanobanana(url, &["admin", "deduct", "--user", &user, "--credits", "20", "--reason", "abuse"]);
    assert_eq!(deduct.status.code(), Some(0), "{}", text(&deduct));
    assert_eq!(db.balance(USER).await, (30, 0));

    let show = nanobanana(url, &["admin", "show", "--user", &user, "--json"]);
    assert_eq!(show.status.code(), Some(0), "{}", text(&show));
    let report: serde_json::Value = serde_json::from_slice(&show.stdout).expect("JSON");
    assert_eq!(report["balance"]["credits_available"], 30);
    assert_eq!(report["recent"][0]["type"], "deduct");
    assert_eq!(report["recent"][0]["reason"], "abuse");
    let show = nanobanana(url, &["admin", "show", "--user", &user]);
    assert!(text(&show).contains("available 30 credits, reserved 0"), "{}", text(&show));
    db.assert_audit_clean().await;
}

#[tokio::test]
async fn refused_actions_explain_and_write_nothing() {
    let db = TestDb::new().await;
    db.user_with(USER, 10).await;
    let url = db.url.as_str();
    let user = USER.to_string();
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["admin", "deduct", "--user", &user, "--credits", "11", "--reason", "x"],
            1,
            "has 10 credits available, cannot deduct 11",
        ),
        (
            &["admin", "grant", "--user", "999", "--credits", "5", "--reason", "x"],
            1,
            "no user with telegram id 999",
        ),
        (
            &["admin", "grant", "--user", &user, "--credits", "0", "--reason", "x"],
            2,
            "credits must be a positive whole number",
        ),
        (
            &["admin", "grant", "--user", &user, "--credits", "-5", "--reason", "x"],
            2,
            "credits must be a positive whole number",
        ),
        (
            &["admin", "grant", "--user", &user, "--credits", "ten", "--reason", "x"],
            2,
            "credits must be a whole number",
        ),
        (&["admin", "grant", "--user", &user, "--credits", "5", "--reason", "  "], 2, "a reason is required"),
        (&["admin", "grant", "--user", &user, "--credits", "5"], 2, "--reason"),
        (&["admin", "show", "--user", "999"], 1, "no user with telegram id 999"),
    ];
    for (args, code, message) in cases {
        let output = nanobanana(url, args);
        assert_eq!(output.status.code(), Some(*code), "{args:?}: {}", text(&output));
        assert!(text(&output).contains(message), "{args:?}: {}", text(&output));
    }
    assert_eq!(db.balance(USER).await, (10, 0));
    let rows: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM transactions").fetch_one(&db.pool).await.unwrap();
    assert_eq!(rows, 1, "only the setup grant");
}

#[tokio::test]
async fn bad_configuration_stops_the_program_naming_the_variable() {
    let output = nanobanana("postgres://", &["audit"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("DATABASE_URL: malformed value"), "{}", text(&output));
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_nanobanana"))
        .args(["audit"])
        .env("DATABASE_URL", server_url().as_str())
        .env("LOG_FORMAT", "xml")
        .env("PRICE_FLASH", "-1")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("LOG_FORMAT") && text(&output).contains("PRICE_FLASH"),
        "{}",
        text(&output)
    );
}

#[tokio::test]
async fn migrate_creates_a_missing_database() {
    let mut url = server_url();
    let name = format!("nbt_{}_fresh_{}", std::process::id(), uuid::Uuid::new_v4().simple());
    url.set_path(&format!("/{name}"));
    let first = nanobanana(url.as_str(), &["migrate"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let again = nanobanana(url.as_str(), &["migrate"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    let audit = nanobanana(url.as_str(), &["audit"]);
    assert_eq!(audit.status.code(), Some(0), "{}", text(&audit));
    assert!(text(&audit).contains("audit clean"), "{}", text(&audit));
}

#[tokio::test]
async fn a_mistyped_database_url_creates_nothing() {
    let mut url = server_url();
    let name = format!("nbt_{}_typo_{}", std::process::id(), uuid::Uuid::new_v4().simple());
    url.set_path(&format!("/{name}"));
    for args in [&["audit"][..], &["admin", "show", "--user", "1"]] {
        let output = nanobanana(url.as_str(), args);
        assert_ne!(output.status.code(), Some(0), "{args:?}: {}", text(&output));
        assert!(text(&output).contains("does not exist"), "{args:?}: {}", text(&output));
    }
    let mut postgres = server_url();
    postgres.set_path("/postgres");
    let mut admin = sqlx::PgConnection::connect(postgres.as_str()).await.expect("connect");
    let (exists,): (bool,) = sqlx::query_as("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(&name)
        .fetch_one(&mut admin)
        .await
        .expect("pg_database");
    assert!(!exists, "{name} was created");
}

#[tokio::test]
async fn log_dir_receives_the_seeds_files_with_money_movements_and_errors() {
    let db = TestDb::new().await;
    db.user(USER).await;
    let dir = std::env::temp_dir().join(format!("nb-logs-{}", uuid::Uuid::new_v4().simple()));
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_nanobanana"))
            .args(args)
            .env("DATABASE_URL", db.url.as_str())
            .env("LOG_DIR", &dir)
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .output()
            .expect("run nanobanana")
    };
    let user = USER.to_string();
    let granted = run(&["admin", "grant", "--user", &user, "--credits", "5", "--reason", "logs"]);
    assert_eq!(granted.status.code(), Some(0), "{}", text(&granted));
    let refused = run(&["admin", "deduct", "--user", &user, "--credits", "6", "--reason", "logs"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));

    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let payments = read("payments.log");
    let moved = payments
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("JSON lines"))
        .find(|event| event["fields"]["message"] == "credits moved")
        .unwrap_or_else(|| panic!("no movement in payments.log:\n{payments}"));
    assert_eq!(moved["fields"]["user_id"], USER);
    assert_eq!(moved["fields"]["available"], 5);
    let errors = read("errors.log");
    assert!(errors.contains("cannot deduct 6"), "errors.log:\n{errors}");
    assert!(!errors.contains("credits moved"), "only errors in errors.log");
    for name in ["bot_api.log", "worker.log"] {
        assert!(dir.join(name).exists(), "{name} is created");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn webhook_secret_prints_a_fresh_valid_secret_without_any_configuration() {
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_nanobanana"))
            .arg("webhook-secret")
            .env("DATABASE_URL", "not a url: no configuration is read")
            .output()
            .expect("run nanobanana")
    };
    let (first, second) = (run(), run());
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let secret = String::from_utf8_lossy(&first.stdout).trim().to_owned();
    assert!(secret.len() >= 32 && secret.len() <= 256, "{secret}");
    assert!(secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'), "{secret}");
    assert_ne!(secret, String::from_utf8_lossy(&second.stdout).trim(), "fresh each time");
}
