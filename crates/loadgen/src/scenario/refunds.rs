//! Refunds as they happen: a user writes to payment support (`/paysupport`; `/refund` is the
//! admin's), the operator looks up one of their charges and refunds it — with
//! `/refund <topup> [credits]` in the bot as the admin, or with `nanobanana admin refund`
//! from a shell, repeating an unknown outcome under its `--refund-id` as the command says.
//! Sometimes a part of the credits (Stars refuse parts), sometimes credits already spent
//! (refused). The checks in `check.rs` hold every outcome against the providers' books.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use fakes::telegram::users::{self, UserProfile};
use nanobanana::texts::{render, Lang};
use serde_json::Value;
use tokio::task::JoinHandle;

use super::system::{System, ADMIN};
use super::users::Crowd;

/// Shell refunds at once, at most (each is a process).
const MAX_CLI: usize = 4;
/// Repeats of a refund whose outcome stayed unknown, 2 s apart.
const CLI_REPEATS: u32 = 60;

type CliResult = Result<&'static str, String>;

/// A refusal by its reason: credits already spent, a part of a Stars charge, nothing left to
/// refund, more than is left, or something else (which no run should meet).
fn refused(prefix: &'static str, reason: &str) -> &'static str {
    let spent = reason.contains("unspent");
    let part = reason.contains("never a part");
    let nothing = reason.contains("no succeeded charge");
    let too_many = reason.contains("still refundable");
    match (prefix, spent, part, nothing, too_many) {
        ("refund_cli_refused", true, ..) => "refund_cli_refused_spent",
        ("refund_cli_refused", _, true, ..) => "refund_cli_refused_stars_part",
        ("refund_cli_refused", _, _, true, _) => "refund_cli_refused_nothing_left",
        ("refund_cli_refused", _, _, _, true) => "refund_cli_refused_too_many",
        ("refund_cli_refused", ..) => "refund_cli_refused_other",
        (_, true, ..) => "refund_bot_refused_spent",
        (_, _, true, ..) => "refund_bot_refused_stars_part",
        (_, _, _, true, _) => "refund_bot_refused_nothing_left",
        (_, _, _, _, true) => "refund_bot_refused_too_many",
        _ => "refund_bot_refused_other",
    }
}

/// The operator's `nanobanana admin refund` runs in flight.
#[derive(Default)]
pub(super) struct CliRefunds {
    tasks: Vec<JoinHandle<CliResult>>,
}

impl CliRefunds {
    fn running(&self) -> usize {
        self.tasks.iter().filter(|t| !t.is_finished()).count()
    }
}

fn admin_profile() -> UserProfile {
    UserProfile {
        first_name: Some("Operator".to_owned()),
        username: None,
        language_code: Some("en".to_owned()),
    }
}

/// Runs the refund from the shell until its outcome is known.
async fn cli_refund(system: Arc<System>, topup: String, credits: Option<i64>) -> CliResult {
    let credits = credits.map(|c| c.to_string());
    let mut refund_id: Option<String> = None;
    for _ in 0..CLI_REPEATS {
        let mut args = vec!["admin", "refund", "--json", "--topup", topup.as_str()];
        if let Some(credits) = &credits {
            args.extend(["--credits", credits.as_str()]);
        }
        if let Some(id) = &refund_id {
            args.extend(["--refund-id", id.as_str()]);
        }
        let out = system.operator(&args).await.map_err(|e| format!("{e:#}"))?;
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        match out.status.code() {
            Some(0) => return Ok("refund_cli_refunded"),
            Some(1) if report["outcome"] == "released" => return Ok("refund_cli_released"),
            Some(1) => return Ok(refused("refund_cli_refused", report["reason"].as_str().unwrap_or(""))),
            Some(3) => {
                refund_id = report["refund_id"].as_str().map(str::to_owned);
                if refund_id.is_none() {
                    return Err(format!("held without a refund id: {report}"));
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            code => {
                return Err(format!(
                    "`nanobanana admin refund --topup {topup}` exited {code:?}: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ))
            }
        }
    }
    Ok("refund_cli_still_held")
}

impl Crowd {
    /// The user asks for their money back; the operator refunds one of their charges.
    pub(super) async fn refund(&mut self, system: &Arc<System>, index: usize) -> anyhow::Result<()> {
        let (id, profile) = (self.users[index].id, self.users[index].profile.clone());
        let charge: Option<(uuid::Uuid, String, i64)> = sqlx::query_as(
            "SELECT topup_id, provider, credits FROM payments
             WHERE user_id = $1 AND status = 'succeeded' ORDER BY random() LIMIT 1",
        )
        .bind(id)
        .fetch_optional(&system.pool)
        .await?;
        let owed = std::mem::take(&mut self.users[index].refund_owed);
        let Some((topup, provider, credits)) = charge else {
            if owed {
                // Not credited yet: asks again in a moment.
                self.users[index].refund_owed = true;
                self.skipped += 1;
            } else {
                self.record(users::command(system.tg.state(), id, &profile, "paysupport", None));
                self.flow("refund_nothing_bought");
            }
            return Ok(());
        };
        self.record(users::command(system.tg.state(), id, &profile, "paysupport", None));
        // A part now and then: rubles allow it, Stars refuse it.
        let part = (!owed && self.rng.percent(25)).then(|| 1 + self.rng.below(credits as u64) as i64);
        if part.is_some() && provider == "stars" {
            self.flow("refund_stars_part_asked");
        }
        let cli = match self.owed(&["refund_in_bot", "refund_cli"]) {
            Some(first) => first == "refund_cli",
            None => self.rng.percent(35),
        };
        if cli && self.cli.running() < MAX_CLI {
            self.flow("refund_cli");
            let task = tokio::spawn(cli_refund(system.clone(), topup.to_string(), part));
            self.cli.tasks.push(task);
            return Ok(());
        }
        self.flow("refund_in_bot");
        let args = match part {
            Some(part) => format!("{topup} {part}"),
            None => topup.to_string(),
        };
        self.record(users::command(system.tg.state(), ADMIN, &admin_profile(), "refund", Some(&args)));
        Ok(())
    }

    /// Waits for the shell refunds; what they ended with goes into `flows`, failures returned.
    pub async fn finish_refunds(&mut self) -> Vec<String> {
        let mut problems = Vec::new();

        for task in std::mem::take(&mut self.cli.tasks) {
            match task.await {
                Ok(Ok(outcome)) => {
                    if outcome == "refund_cli_still_held" {
                        problems.push("a shell refund's outcome stayed unknown".to_owned());
                    }
                    self.flow(outcome);
                }
                Ok(Err(e)) => problems.push(e),
                Err(e) => problems.push(format!("shell refund task: {e}")),
            }
        }
        problems
    }
}

/// The admin's `/refund` answers in the admin's chat, by outcome (refusals by reason).
pub fn admin_answers(system: &System) -> BTreeMap<&'static str, u64> {
    let prefix = |key: &str| {
        let text = render(Lang::En, key, &[("credits", "\u{0}"), ("amount", "\u{0}"), ("reason", "\u{0}")]);
        text.split('\u{0}').next().unwrap_or_default().to_owned()
    };
    let kinds = [
        ("refund_bot_refunded", prefix("admin_refund_done")),
        ("refund_bot_released", prefix("admin_refund_released")),
        ("refund_bot_held", prefix("admin_refund_held")),
        ("refund_bot_refused", prefix("admin_refund_refused")),
    ];
    let texts: Vec<String> = system
        .tg
        .chat(ADMIN)
        .map(|c| c.messages.iter().filter_map(|m| m.text().map(str::to_owned)).collect())
        .unwrap_or_default();
    let mut answers: BTreeMap<&'static str, u64> = kinds.iter().map(|(name, _)| (*name, 0)).collect();
    for text in &texts {
        let Some((name, prefix)) = kinds.iter().find(|(_, p)| text.starts_with(p.as_str())) else { continue };
        *answers.entry(name).or_default() += 1;
        if *name == "refund_bot_refused" {
            *answers.entry(refused(name, &text[prefix.len()..])).or_default() += 1;
        }
    }
    answers
}
