//! The composition root (DESIGN §2, L6): every long-running role is wired here, each client
//! built once. `serve`: the HTTP server (Telegram and YooKassa webhooks, health), update
//! handling, the outbox sender, the album sweeper and the payment reconciler, until shutdown;
//! with `PUBLIC_BASE_URL` it registers its webhook at start, with `TELEGRAM_MODE=polling` it
//! long-polls instead (local development) and never deletes a webhook by itself. `work`: the
//! generation worker. `run_both`: the two in one process.

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

use crate::bot::inbox::Bot;
use crate::config::{Config, TelegramConfig, TelegramMode};
use crate::db;
use crate::http::{self, AppState};
use crate::outbox;
use crate::telegram::client::BotApi;

/// The update kinds the bot asks Telegram for.
pub const ALLOWED_UPDATES: &[&str] = &["message", "callback_query", "pre_checkout_query", "my_chat_member"];

/// How old `/metrics`' database figures may be.
pub const METRICS_TTL: Duration = Duration::from_secs(5);
/// How old its business totals may be (each read scans whole tables: `metrics::render_totals`).
pub const METRICS_TOTALS_TTL: Duration = Duration::from_secs(300);

/// Serves on `listener` until `shutdown` turns true; then stops accepting connections (readiness
/// answers 503 at once), answers the requests in flight, lets the album sweeper, the reconciler
/// and the outbox sender finish the pass in progress, and returns.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let telegram = config.telegram.clone().context("serve needs TELEGRAM_BOT_TOKEN")?;
    // Bound before anything else, like the webhook's listener: by the time the service answers
    // there, its metrics listener accepts too.
    let private_listener = match config.metrics.addr {
        Some(address) => Some((
            address,
            TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen on {address} (METRICS_ADDR)"))?,
        )),
        None => None,
    };
    let pool = db::connect(&config.database).await?;
    if config.database.auto_migrate {
        db::migrate(&pool).await?;
    }
    warn_about_configuration(&config);
    let bot = Arc::new(bot(pool, config.clone(), &telegram).await?);
    // Before the webhook, so the menu is in place by the time updates arrive.
    crate::bot::menu::register(&bot.api).await;
    let background = Background::start(&bot, &telegram, shutdown.clone()).await?;
    let redis = crate::redis::connect(&config.redis).await?;
    let figures = Arc::new(crate::metrics::Figures::new(METRICS_TTL, METRICS_TOTALS_TTL));
    let panel = panel_state(&bot, &background.storage);
    let state = AppState {
        bot,
        webhook_secret: telegram.webhook_secret.clone(),
        redis,
        figures,
        draining: shutdown.clone(),
    };
    let private = match private_listener {
        Some((address, listener)) => {
            tracing::info!(%address, "serving metrics");
            let router = http::private_router(state.clone());
            Some(tokio::spawn(
                axum::serve(listener, router).with_graceful_shutdown(stopped(shutdown.clone())).into_future(),
            ))
        }
        None => None,
    };
    tracing::info!(address = %listener.local_addr()?, "serving");
    let app = http::router(state).nest("/panel", crate::panel::router(panel));
    axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(stopped(shutdown))
        .await
        .context("HTTP server")?;
    if let Some(private) = private {
        private.await?.context("metrics server")?;
    }
    background.join().await?;
    tracing::info!("serve stopped");
    Ok(())
}

/// The bot with every client it needs, each built once here: the Bot API, the workers'
/// signal, and YooKassa when configured (shared by `/buy`, its webhook and the reconciler).
async fn bot(pool: sqlx::PgPool, config: Arc<Config>, telegram: &TelegramConfig) -> anyhow::Result<Bot> {
    let api = BotApi::new(telegram)?;
    let outbox_wake = Arc::new(Notify::new());
    let redis = crate::redis::connect(&config.redis).await?;
    let workers = crate::signals::Notifier::new(redis.clone(), &config.redis.prefix);
    let replies =
        crate::bot::budget::ReplyBudget::new(redis, &config.redis.prefix, config.limits.replies_per_minute);
    let yookassa = config.yookassa.clone().and_then(|yk| {
        crate::payments::YooKassa::new(pool.clone(), yk, Some(outbox_wake.clone()))
            .map_err(|e| tracing::error!(error = %e, "YooKassa client; ruble payments are off"))
            .ok()
            .map(|yk| Arc::new(yk.with_admins(config.operator.admin_ids.clone())))
    });
    let (fast_handled, senders) = (Default::default(), crate::bot::fast::Senders::new(100_000));
    Ok(Bot { pool, config, api, outbox_wake, workers, yookassa, replies, fast_handled, senders })
}

/// The operator panel's state, when `PANEL_SECRET` turns it on; it reads previews from the
/// storage the outbox sender uses.
fn panel_state(bot: &Arc<Bot>, storage: &crate::storage::Storage) -> Option<crate::panel::PanelState> {
    let panel = bot.config.panel.clone()?;
    Some(crate::panel::PanelState { bot: bot.clone(), panel: Arc::new(panel), storage: storage.clone() })
}

/// Resolves once `shutdown` turns true (or its sender is gone).
async fn stopped(mut shutdown: watch::Receiver<bool>) {
    while !*shutdown.borrow() {
        if shutdown.changed().await.is_err() {
            break;
        }
    }
}

/// What `serve` runs beside the HTTP server, until shutdown.
struct Background {
    sender: tokio::task::JoinHandle<()>,
    reconciler: Option<tokio::task::JoinHandle<()>>,
    albums: tokio::task::JoinHandle<()>,
    resumer: tokio::task::JoinHandle<()>,
    poller: Option<tokio::task::JoinHandle<()>>,
    eraser: tokio::task::JoinHandle<()>,
    broadcasts: tokio::task::JoinHandle<()>,
    reports: tokio::task::JoinHandle<()>,
    daily_report: Option<tokio::task::JoinHandle<()>>,
    /// The image storage, built once here; the panel reads previews from it too.
    storage: crate::storage::Storage,
}

impl Background {
    /// The outbox sender, the broadcast feeder, the payment reconciler (with YooKassa), the album
    /// sweeper, the update
    /// resumer with the Stars refund reconciler (`bot::background`), and either
    /// the webhook registered (with `PUBLIC_BASE_URL`) or long polling.
    async fn start(
        bot: &Arc<Bot>,
        telegram: &TelegramConfig,
        shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<Self> {
        crate::reports::check_timezone(&bot.pool, &bot.config.operator.timezone).await?;
        let storage = crate::storage::Storage::from_location(&bot.config.storage)?;
        let retry_cap = Duration::from_millis(u64::from(bot.config.limits.outbox_retry_cap_ms));
        let sender = outbox::Sender::new(
            bot.pool.clone(),
            bot.api.clone(),
            bot.outbox_wake.clone(),
            Arc::new(bot.config.catalog.clone()),
        )
        .with_storage(storage.clone())
        .with_retry_cap(retry_cap);
        let sender = tokio::spawn(sender.run(shutdown.clone()));
        let eraser = tokio::spawn(crate::bot::account::erase_loop(
            bot.pool.clone(),
            storage.clone(),
            shutdown.clone(),
        ));
        let reconciler = bot.yookassa.clone().map(|yk| {
            tokio::spawn(crate::payments::reconcile_loop(yk, crate::payments::INTERVAL, shutdown.clone()))
        });
        let albums = tokio::spawn(crate::bot::album::sweep(bot.clone(), shutdown.clone()));
        let broadcasts = tokio::spawn(crate::broadcast::feeder::run(
            bot.pool.clone(),
            bot.outbox_wake.clone(),
            shutdown.clone(),
        ));
        let resumer = tokio::spawn(crate::bot::background::run(bot.clone(), shutdown.clone()));
        let (reports, daily_report) = spawn_reports(bot, &shutdown);
        let poller = match telegram.mode {
            TelegramMode::Webhook => {
                if let Some(base) = &telegram.public_base_url {
                    set_webhook(&bot.api, telegram, base).await?;
                }
                None
            }
            TelegramMode::Polling => {
                refuse_if_webhook_set(&bot.api).await?;
                Some(tokio::spawn(poll(bot.clone(), shutdown)))
            }
        };
        Ok(Self {
            sender,
            reconciler,
            albums,
            resumer,
            poller,
            eraser,
            broadcasts,
            reports,
            daily_report,
            storage,
        })
    }

    /// Waits for each to finish the pass in progress.
    async fn join(self) -> anyhow::Result<()> {
        if let Some(poller) = self.poller {
            poller.await?;
        }
        self.albums.await?;
        self.resumer.await?;
        self.eraser.await?;
        self.broadcasts.await?;
        self.reports.await?;
        if let Some(daily_report) = self.daily_report {
            daily_report.await?;
        }
        if let Some(reconciler) = self.reconciler {
            reconciler.await?;
        }
        self.sender.await?;
        Ok(())
    }
}

/// The overview's rollup refresher, and the daily report when `DAILY_REPORT_HOUR` is set.
fn spawn_reports(
    bot: &Arc<Bot>,
    shutdown: &watch::Receiver<bool>,
) -> (tokio::task::JoinHandle<()>, Option<tokio::task::JoinHandle<()>>) {
    let (pool, timezone) = (bot.pool.clone(), bot.config.operator.timezone.clone());
    let refresher = tokio::spawn(crate::reports::refresh_loop(pool, timezone, shutdown.clone()));
    let daily = daily_report(&bot.config)
        .map(|report| tokio::spawn(report.run(bot.pool.clone(), bot.outbox_wake.clone(), shutdown.clone())));
    (refresher, daily)
}

/// The daily report, when `DAILY_REPORT_HOUR` is set.
fn daily_report(config: &Config) -> Option<crate::reports::daily::DailyReport> {
    let hour = config.operator.daily_report_hour?;
    Some(crate::reports::daily::DailyReport {
        timezone: config.operator.timezone.clone(),
        hour,
        admins: config.operator.admin_ids.clone(),
        rates: crate::reports::rates(config),
        // The panel's address when it is on; otherwise the bot's /panel (which says it is off).
        panel_link: config.panel.as_ref().map_or_else(|| "/panel".to_owned(), |p| p.link("")),
    })
}

async fn set_webhook(api: &BotApi, telegram: &TelegramConfig, base: &url::Url) -> anyhow::Result<()> {
    let url = base.join("telegram/webhook").context("PUBLIC_BASE_URL")?;
    let secret = telegram.webhook_secret.as_ref().context("webhook mode needs TELEGRAM_WEBHOOK_SECRET")?;
    let params = json!({
        "url": url.as_str(),
        "secret_token": secret.expose(),
        "allowed_updates": ALLOWED_UPDATES,
        "max_connections": 40,
    });
    api.call("setWebhook", &params).await.context("setWebhook")?;
    tracing::info!(url = %url, "webhook registered");
    Ok(())
}

/// Polling while a webhook is set would fail; say so instead of deleting someone's webhook.
async fn refuse_if_webhook_set(api: &BotApi) -> anyhow::Result<()> {
    let info = api.call("getWebhookInfo", &json!({})).await.context("getWebhookInfo")?;
    if let Some(url) = info.get("url").and_then(Value::as_str).filter(|u| !u.is_empty()) {
        bail!(
            "a webhook is set ({url}), so TELEGRAM_MODE=polling cannot receive updates; \
             delete it yourself (deleteWebhook) or use TELEGRAM_MODE=webhook"
        );
    }
    Ok(())
}

/// Long polling for local development: the same handler, the offset advanced after each
/// update is committed.
async fn poll(bot: Arc<Bot>, mut shutdown: watch::Receiver<bool>) {
    let mut offset = 0i64;
    while !*shutdown.borrow() {
        let params = json!({ "offset": offset, "timeout": 25, "allowed_updates": ALLOWED_UPDATES });
        let updates = tokio::select! {
            result = bot.api.call("getUpdates", &params) => result,
            _ = shutdown.changed() => break,
        };
        let updates = match updates {
            Ok(Value::Array(updates)) => updates,
            Ok(_) => Vec::new(),
            Err(e) => {
                tracing::warn!(error = %e, "getUpdates failed");
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        for update in updates {
            let id = update.get("update_id").and_then(Value::as_i64);
            if let Err(e) = bot.handle(&update).await {
                tracing::error!(update_id = ?id, error = %e, "update handling failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                break;
            }
            if let Some(id) = id {
                offset = id + 1;
            }
        }
    }
}

/// `nanobanana run`: the service and the worker on one shutdown signal. The worker starts after
/// `serve` has had the chance to migrate; if either fails, the other is told to stop.
pub async fn run_both(
    config: &Config,
    listener: tokio::net::TcpListener,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    if config.database.auto_migrate {
        db::migrate(&db::connect(&config.database).await?).await?;
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let stop = std::sync::Arc::new(stop);
    let mut outer = shutdown;
    let forward = {
        let stop = stop.clone();
        tokio::spawn(async move {
            while !*outer.borrow() {
                if outer.changed().await.is_err() {
                    return;
                }
            }
            let _ = stop.send(true);
        })
    };
    // Whichever half ends first (an error, or the shutdown) stops the other.
    let serve = async {
        let result = serve(config.clone(), listener, stopped.clone()).await;
        let _ = stop.send(true);
        result
    };
    let work = async {
        let result = work(config, stopped.clone()).await;
        let _ = stop.send(true);
        result
    };
    let (served, worked) = tokio::join!(serve, work);
    forward.abort();
    served.context("serve")?;
    worked.context("worker")?;
    Ok(())
}

/// `nanobanana worker`: connects, migrates when configured, and runs until `shutdown`.
pub async fn work(config: &Config, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let pool = crate::db::connect(&config.database).await?;
    if config.database.auto_migrate {
        crate::db::migrate(&pool).await?;
    }
    warn_about_configuration(config);
    if config.telegram.is_none() {
        tracing::warn!(
            "TELEGRAM_BOT_TOKEN is not set: prompts with reference photos cannot be downloaded and will fail"
        );
    }
    let worker =
        crate::worker::Worker::new(config, pool, crate::worker::WorkerSettings::from_config(config)).await?;
    let waiter = crate::signals::Waiter::new(
        crate::redis::connect_blocking(&config.redis).await?,
        &config.redis.prefix,
    );
    crate::worker::run(Arc::new(worker), waiter, shutdown).await
}

/// Start-up warnings: deprecated variables (and how they were mapped onto the catalog), and
/// each (model, size) priced below its provider cost.
fn warn_about_configuration(config: &Config) {
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    for warning in config.prices_below_cost() {
        tracing::warn!("{warning}");
    }
    for warning in config.plain_http_apis() {
        tracing::warn!("{warning}");
    }
}
