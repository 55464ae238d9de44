//! The machine's reference: pgbench's built-in tpcb-like script on a database of its own.

use std::process::Command;

use anyhow::{bail, Context};

use crate::setup;

/// pgbench's own database, initialized once at a scale factor.
pub struct Pgbench {
    url: url::Url,
}

impl Pgbench {
    fn command(&self) -> Command {
        let url = &self.url;
        let mut command = Command::new("pgbench");
        command
            .env("PGHOST", url.host_str().unwrap_or("127.0.0.1"))
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

    /// Runs the built-in tpcb-like script with `clients` for `seconds`; returns its tps.
    pub async fn tpcb_like(&self, clients: u32, seconds: u64) -> anyhow::Result<f64> {
        setup::checkpoint(&self.url).await;
        let threads = clients.min(std::thread::available_parallelism().map_or(2, |n| n.get() as u32));
        let mut run = self.command();
        run.args(["-b", "tpcb-like", "-c", &clients.to_string(), "-j", &threads.to_string()]);
        run.args(["-T", &seconds.to_string()]);
        let output = tokio::task::spawn_blocking(move || run.output()).await?.context("running pgbench")?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            bail!("pgbench failed: {stdout}{}", String::from_utf8_lossy(&output.stderr));
        }
        parse_tps(&stdout).with_context(|| format!("no tps in pgbench's output:\n{stdout}"))
    }
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
}
