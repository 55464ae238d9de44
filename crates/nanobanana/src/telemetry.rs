//! Logging with `tracing`: human-readable on a terminal, JSON lines with `LOG_FORMAT=json`,
//! and with `LOG_DIR` the seed's four files, each fed by the modules it is named after.

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tracing::{Level, Metadata};
use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, Layer, Registry};

use crate::config::{LogConfig, LogFormat};

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// The seed's log files and the module paths (under `nanobanana::`) that write to each.
const FILES: &[(&str, &[&str])] = &[
    ("bot_api.log", &["telegram", "http", "outbox", "cli"]),
    ("worker.log", &["worker", "jobs", "gemini", "storage"]),
    ("payments.log", &["ledger", "payments", "yookassa", "admin", "audit"]),
];

fn is_module(meta: &Metadata<'_>, modules: &[&str]) -> bool {
    let Some(rest) = meta.target().strip_prefix("nanobanana::") else {
        return false;
    };
    modules.iter().any(|m| rest == *m || rest.starts_with(&format!("{m}::")))
}

fn open(dir: &Path, name: &str) -> anyhow::Result<Arc<File>> {
    let path = dir.join(name);
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot open log file {}", path.display()))?;
    Ok(Arc::new(file))
}

fn file_layer(
    file: Arc<File>,
) -> fmt::Layer<Registry, fmt::format::DefaultFields, fmt::format::Format, Arc<File>> {
    fmt::layer().with_ansi(false).with_writer(file)
}

/// Installs the global subscriber. `RUST_LOG` filters what reaches the terminal (default `info`).
pub fn init(config: &LogConfig) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let mut layers: Vec<BoxedLayer> = Vec::new();
    let stdout: BoxedLayer = match config.format {
        LogFormat::Json => Box::new(fmt::layer().json().with_current_span(true).with_filter(filter)),
        LogFormat::Pretty => Box::new(fmt::layer().with_target(true).with_filter(filter)),
    };
    layers.push(stdout);
    if let Some(dir) = &config.dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create LOG_DIR {}", dir.display()))?;
        for (name, modules) in FILES {
            let layer = file_layer(open(dir, name)?);
            let only = filter_fn(move |meta| *meta.level() <= Level::INFO && is_module(meta, modules));
            layers.push(match config.format {
                LogFormat::Json => Box::new(layer.json().with_filter(only)),
                LogFormat::Pretty => Box::new(layer.with_filter(only)),
            });
        }
        let errors = file_layer(open(dir, "errors.log")?);
        let only = filter_fn(|meta| *meta.level() == Level::ERROR);
        layers.push(match config.format {
            LogFormat::Json => Box::new(errors.json().with_filter(only)),
            LogFormat::Pretty => Box::new(errors.with_filter(only)),
        });
    }
    tracing_subscriber::registry().with(layers).try_init().context("a logger is already installed")?;
    Ok(())
}
