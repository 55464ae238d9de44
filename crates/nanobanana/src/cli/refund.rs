//! `nanobanana admin refund`: a refund from a shell, through the same two-phase
//! `payments::refund::Refunder` as the admin's `/refund` in the bot.

use std::process::ExitCode;

use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::Credits;
use crate::payments::refund::{money, RefundError, RefundRequest, Refunded, Refunder};
use crate::payments::YooKassa;
use crate::telegram::client::BotApi;

/// `nanobanana admin refund`.
#[derive(Debug, clap::Args)]
pub struct RefundArgs {
    #[arg(long, value_name = "TOPUP_ID")]
    pub topup: Uuid,
    /// Part of the charge's credits (default: all of them); Stars refund whole charges only.
    #[arg(long, value_parser = |s: &str| Credits::parse(s).map_err(|e| e.to_string()))]
    pub credits: Option<Credits>,
    /// Repeat a refund whose outcome was unknown, under its id (the provider's idempotence key).
    #[arg(long, value_name = "REFUND_ID")]
    pub refund_id: Option<Uuid>,
    #[arg(long)]
    pub json: bool,
}

/// Runs the refund from a shell; exit code 0 when refunded, 1 when refused or released,
/// 3 when the outcome is still unknown (repeat with `--refund-id`).
pub async fn run(
    config: &crate::config::Config,
    pool: &PgPool,
    args: RefundArgs,
) -> anyhow::Result<std::process::ExitCode> {
    let yk = match config.yookassa.clone() {
        Some(c) => Some(YooKassa::new(pool.clone(), c, None)?),
        None => None,
    };
    let api = match &config.telegram {
        Some(t) => Some(BotApi::new(t)?),
        None => None,
    };
    let login = std::env::var("USER").unwrap_or_else(|_| "operator".to_owned());
    let request = RefundRequest {
        refund_id: args.refund_id.unwrap_or_else(Uuid::new_v4),
        topup_id: args.topup,
        credits: args.credits,
        actor: format!("cli:{login}"),
    };
    let refunder = Refunder { pool, yookassa: yk.as_ref(), telegram: api.as_ref() };
    let outcome = match refunder.refund(&request).await {
        Ok(outcome) => outcome,
        Err(RefundError::Db(e)) => return Err(e.into()),
        Err(e) => {
            if args.json {
                println!("{}", json!({"outcome": "refused", "reason": e.to_string()}));
            } else {
                eprintln!("refund refused: {e}");
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    if args.json {
        println!("{}", serde_json::to_string(&outcome)?);
    } else {
        match &outcome {
            Refunded::Refunded { refund_id, credits, amount_minor, currency } => {
                println!(
                    "refunded {credits} credits, {} (refund {refund_id})",
                    money(currency, *amount_minor)
                )
            }
            Refunded::Released { refund_id, reason, .. } => {
                println!("the provider refused ({reason}); hold released (refund {refund_id})")
            }
            Refunded::Held { refund_id, reason, .. } => {
                println!("outcome unknown ({reason}); credits held; repeat with --refund-id {refund_id}")
            }
        }
    }
    Ok(match outcome {
        Refunded::Refunded { .. } => ExitCode::SUCCESS,
        Refunded::Released { .. } => ExitCode::FAILURE,
        Refunded::Held { .. } => ExitCode::from(3),
    })
}

