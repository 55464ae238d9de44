//! The closed loop of `loadgen intake --driver wrk`: the neutral HTTP load driver the issue
//! measures with (`wrk`, Debian's package), as a process of its own, so the load generator's
//! own HTTP client does not share the service's cores and runtime. A Lua script makes every
//! request a new update of the wrk-like mix (90% prompts, 10% `/start`, users round-robin).

use std::time::Duration;

use anyhow::{bail, Context};

/// What wrk reports: requests per second, p50 and p99 in ms, non-2xx answers.
pub struct WrkRun {
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
}

/// The request script; ids start at `first_update` (apart from the in-process phases' ids).
fn script(first_update: i64, first_user: i64, users: i64, secret: &str) -> String {
    format!(
        r#"local thread_count = 0
function setup(thread)
  thread:set("base", {first_update} + thread_count * 100000000)
  thread_count = thread_count + 1
end
local n = 0
function request()
  n = n + 1
  local id = base + n
  local user = {first_user} + (id % {users})
  local text
  if id % 10 == 0 then text = "/start" else text = "a banana number " .. id end
  local body = string.format('{{"update_id":%d,"message":{{"message_id":%d,"date":1700000000,"text":"%s","chat":{{"id":%d,"type":"private","first_name":"L"}},"from":{{"id":%d,"is_bot":false,"first_name":"L","language_code":"ru"}}}}}}', id, id, text, user, user)
  return wrk.format("POST", nil, {{["Content-Type"] = "application/json", ["X-Telegram-Bot-Api-Secret-Token"] = "{secret}"}}, body)
end
function done(summary, latency, requests)
  io.write(string.format("NB p50_us=%d p99_us=%d\n", latency:percentile(50), latency:percentile(99)))
end
"#
    )
}

/// Runs wrk against `url` with `clients` connections for `seconds`.
pub async fn run(
    url: &str,
    clients: u32,
    seconds: u64,
    (first_update, first_user, users): (i64, i64, i64),
    secret: &str,
) -> anyhow::Result<WrkRun> {
    let path = std::env::temp_dir().join(format!("loadgen-wrk-{}.lua", uuid::Uuid::new_v4().simple()));
    std::fs::write(&path, script(first_update, first_user, users, secret))?;
    let output = tokio::process::Command::new("wrk")
        .args(["-t2", &format!("-c{clients}"), &format!("-d{seconds}s"), "--timeout", "10s", "-s"])
        .arg(&path)
        .arg(url)
        .output()
        .await
        .context("cannot run wrk: install it (Debian: apt-get install wrk)");
    let _ = std::fs::remove_file(&path);
    let output = output?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&output.stderr));
    }
    parse(&text).with_context(|| format!("wrk's report: {text}"))
}

fn parse(text: &str) -> anyhow::Result<WrkRun> {
    let number_after = |prefix: &str| -> Option<f64> {
        let line = text.lines().find(|l| l.trim_start().starts_with(prefix))?;
        line.trim_start()[prefix.len()..].split_whitespace().next()?.parse().ok()
    };
    let per_second = number_after("Requests/sec:").context("no Requests/sec")?;
    let errors = number_after("Non-2xx or 3xx responses:").unwrap_or(0.0) as u64;
    let ours = text.lines().find(|l| l.starts_with("NB ")).context("no NB line")?;
    let field = |name: &str| -> Option<f64> {
        ours.split_whitespace().find_map(|kv| kv.strip_prefix(name)).and_then(|v| v.parse().ok())
    };
    let us = |v: f64| Duration::from_micros(v as u64).as_secs_f64() * 1000.0;
    Ok(WrkRun {
        per_second,
        p50_ms: us(field("p50_us=").context("p50")?),
        p99_ms: us(field("p99_us=").context("p99")?),
        errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrks_report() {
        let report = "Running 10s test @ http://127.0.0.1:1/telegram/webhook\n  2 threads and 32 connections\n\
                      Requests/sec:   1234.56\nTransfer/sec:    100KB\nNon-2xx or 3xx responses: 3\nNB p50_us=1500 p99_us=12000\n";
        let run = parse(report).expect("parsed");
        assert_eq!((run.per_second, run.errors), (1234.56, 3));
        assert_eq!((run.p50_ms, run.p99_ms), (1.5, 12.0));
    }
}
