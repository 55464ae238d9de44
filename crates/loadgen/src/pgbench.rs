//! The machine's reference: pgbench's built-in tpcb-like script on a database of its own.

use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};

use crate::setup;
use crate::stats::Samples;

/// pgbench's own database, initialized once at a scale factor.
pub struct Pgbench {
    url: url::Url,
}

impl Pgbench {
    fn command(&self) -> Command {
        let url = &self.url;
        let mut command = Command::new("pgbench");
        // `?host=/var/run/postgresql` (a Unix socket's directory, as sqlx reads it) wins over
        // the URL's host: the reference must reach the server the way the service does.
        let socket = url.query_pairs().find(|(key, _)| key == "host").map(|(_, dir)| dir.into_owned());
        command
            .env("PGHOST", socket.as_deref().or(url.host_str()).unwrap_or("127.0.0.1"))
            .env("PGPORT", url.port().unwrap_or(5432).to_string())
            .env("PGUSER", if url.username().is_empty() { "postgres" } else { url.username() })
            .env("PGDATABASE", url.path().trim_start_matches('/'));
        if let Some(password) = url.password() {
            command.env("PGPASSWORD", password);
        }
        command
    }

    /// `pgbench -i -s scale` into a fresh database of its own.
    pub async fn init(scale: u32) -> anyhow::Result<Self> {
        let url = setup::fresh_database("nanobanana_loadgen_pgbench").await?;
        let pgbench = Self { url };
        let mut init = pgbench.command();
        init.args(["-i", "-q", "-s", &scale.to_string()]);
        let output =
            init.output().context("running pgbench -i (is pgbench installed? Debian: postgresql-contrib)")?;
        if !output.status.success() {
            bail!("pgbench -i failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        Ok(pgbench)
    }

    /// The built-in tpcb-like script with `clients` for `seconds`, after a checkpoint.
    fn tpcb(&self, clients: u32, seconds: u64) -> Command {
        let threads = clients.min(std::thread::available_parallelism().map_or(2, |n| n.get() as u32));
        let mut run = self.command();
        run.args(["-b", "tpcb-like", "-c", &clients.to_string(), "-j", &threads.to_string()]);
        run.args(["-T", &seconds.to_string()]);
        run
    }

    /// Runs the built-in tpcb-like script with `clients` for `seconds`; returns its tps.
    pub async fn tpcb_like(&self, clients: u32, seconds: u64) -> anyhow::Result<f64> {
        setup::checkpoint(&self.url).await;
        tps_of(execute(self.tpcb(clients, seconds)).await?)
    }

    /// The same run, with each transaction's latency (pgbench's `--log`): the reference's own
    /// tail, beside which a p99 target can be judged. `rate`: an open loop (`-R`) at that many
    /// transactions per second, each latency counted from its scheduled start (its lag included),
    /// as `loadgen intake`'s fixed rate counts its own. The first `warmup` seconds run
    /// unmeasured before the `seconds` measured (their transactions are not in the latencies).
    pub async fn tpcb_like_timed(
        &self,
        clients: u32,
        seconds: u64,
        rate: Option<u32>,
        warmup: u64,
    ) -> anyhow::Result<Reference> {
        setup::checkpoint(&self.url).await;
        let logs = std::env::temp_dir().join(format!("loadgen-pgbench-{}", std::process::id()));
        // Nothing of an earlier process that had this id may be read as this run's.
        let _ = std::fs::remove_dir_all(&logs);
        std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
        let mut run = self.tpcb(clients, warmup + seconds);
        run.arg("--log").arg(format!("--log-prefix={}", logs.join("tx").display()));
        if let Some(rate) = rate {
            run.args(["-R", &rate.to_string()]);
        }
        let measured_from = (SystemTime::now() + Duration::from_secs(warmup)).duration_since(UNIX_EPOCH)?;
        let output = execute(run).await;
        let latency = read_latencies(&logs, measured_from.as_micros());
        let _ = std::fs::remove_dir_all(&logs);
        Ok(Reference { tps: tps_of(output?)?, latency: latency? })
    }
}

/// Runs pgbench to its end; its output if it succeeded.
async fn execute(mut run: Command) -> anyhow::Result<Output> {
    let output = tokio::task::spawn_blocking(move || run.output()).await?.context("running pgbench")?;
    if !output.status.success() {
        let stdout = String::from_utf8_lossy(&output.stdout);
        bail!("pgbench failed: {stdout}{}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(output)
}

/// The tps pgbench printed.
fn tps_of(output: Output) -> anyhow::Result<f64> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    parse_tps(&stdout).with_context(|| format!("no tps in pgbench's output:\n{stdout}"))
}

/// One reference run: its rate and every transaction's latency.
pub struct Reference {
    pub tps: f64,
    pub latency: Samples,
}

/// The latency of every transaction that ended at or after `from` (µs since the epoch), from
/// pgbench's per-thread logs in `dir`.
fn read_latencies(dir: &std::path::Path, from: u128) -> anyhow::Result<Samples> {
    let mut samples = Samples::default();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let text = std::fs::read_to_string(entry?.path())?;
        for (micros, ended) in text.lines().filter_map(parse_latency) {
            if ended >= from {
                samples.push(Duration::from_micros(micros));
            }
        }
    }
    anyhow::ensure!(samples.len() > 0, "pgbench logged no transactions");
    Ok(samples)
}

/// A `--log` line: `client transaction latency_us script end_s end_us [schedule_lag_us]`; the
/// latency with its lag, if any, and when it ended (µs since the epoch).
fn parse_latency(line: &str) -> Option<(u64, u128)> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let latency: u64 = fields.get(2)?.parse().ok()?;
    let (seconds, micros): (u128, u128) = (fields.get(4)?.parse().ok()?, fields.get(5)?.parse().ok()?);
    let lag: u64 = fields.get(6).map_or(Some(0), |lag| lag.parse().ok())?;
    Some((latency + lag, seconds * 1_000_000 + micros))
}

/// The `tps = N (without initial connection time)` line.
fn parse_tps(output: &str) -> Option<f64> {
    output
        .lines()
        .find(|line| line.starts_with("tps = ") && line.contains("without initial connection time"))
        .and_then(|line| line.trim_start_matches("tps = ").split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_tps_from_pgbench_output() {
        let output = "number of failed transactions: 0 (0.000%)\nlatency average = 6.1 ms\n\
                      initial connection time = 12.3 ms\ntps = 1311.804 (without initial connection time)\n";
        assert_eq!(super::parse_tps(output), Some(1311.804));
        assert_eq!(super::parse_tps("nothing"), None);
    }

    #[test]
    fn reads_a_transactions_latency_from_a_log_line() {
        let ended = 1_764_700_000_123_456;
        assert_eq!(super::parse_latency("3 1041 2716 0 1764700000 123456"), Some((2716, ended)));
        assert_eq!(
            super::parse_latency("3 1041 2716 0 1764700000 123456 310"),
            Some((3026, ended)),
            "with -R"
        );
        assert_eq!(super::parse_latency("3 1041"), None);
        assert_eq!(super::parse_latency("3 1041 skipped 0 1764700000 123456"), None);
    }
}
