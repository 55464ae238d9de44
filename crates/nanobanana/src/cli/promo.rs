//! `nanobanana admin promo create|list|disable`: the same calls as the bot's `/promo new|list|
//! disable` (`db::growth`), from a shell.

use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Subcommand;

use crate::config::Config;
use crate::db::growth::{self, NewPromo};
use crate::domain::growth::PromoName;
use crate::domain::Credits;

#[derive(Debug, Subcommand)]
pub enum PromoCommand {
    /// Create a promo code worth CREDITS bonus credits, for USES users, valid DAYS days.
    Create {
        /// 3–32 of a-z 0-9 _ - (case-insensitive).
        #[arg(long)]
        code: String,
        #[arg(long, value_parser = parse_credits)]
        credits: Credits,
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        uses: u32,
        /// Without it the code does not expire.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=3650))]
        days: Option<u32>,
        #[arg(long)]
        json: bool,
    },
    /// List the codes, newest first.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Switch a code off: later redemptions are refused.
    Disable {
        #[arg(long)]
        code: String,
    },
}

fn parse_credits(text: &str) -> Result<Credits, String> {
    Credits::parse(text).map_err(|e| e.to_string())
}

pub async fn run(config: &Config, command: PromoCommand) -> anyhow::Result<ExitCode> {
    let pool = super::pool(config).await?;
    let mut conn = pool.acquire().await?;
    match command {
        PromoCommand::Create { code, credits, uses, days, json } => {
            let Some(name) = PromoName::parse(&code) else {
                bail!("{code:?} is not a promo code: 3–32 of a-z 0-9 _ -");
            };
            let login = std::env::var("USER").unwrap_or_else(|_| "operator".to_owned());
            let actor = format!("cli:{login}");
            let new = NewPromo {
                code: name.as_str(),
                credits: credits.get(),
                max_uses: i64::from(uses),
                days,
                created_by: &actor,
            };
            let Some(made) = growth::create_promo(&mut conn, &new).await.context("creating the code")? else {
                eprintln!("a promo code {} exists already", name.as_str());
                return Ok(ExitCode::FAILURE);
            };
            if json {
                println!("{}", serde_json::to_string(&made)?);
            } else {
                let expiry = made.expires_at.map_or("no expiry".to_owned(), |at| format!("expires {at}"));
                println!("{}: {} credits, {} uses, {expiry}", made.code, made.credits, made.max_uses);
            }
        }
        PromoCommand::List { json } => {
            let codes = growth::list_promos(&mut conn).await?;
            if json {
                println!("{}", serde_json::to_string(&codes)?);
            } else {
                for c in codes {
                    let expiry =
                        c.expires_at.map_or("-".to_owned(), |at| at.format("%Y-%m-%d %H:%M").to_string());
                    let state = if c.disabled { "disabled" } else { "active" };
                    println!(
                        "{:<32} {:>8} cr  {:>6}/{:<6} expires {expiry}  {state}",
                        c.code, c.credits, c.used, c.max_uses
                    );
                }
            }
        }
        PromoCommand::Disable { code } => {
            if !growth::disable_promo(&mut conn, &code).await? {
                eprintln!("no promo code {}", code.to_ascii_lowercase());
                return Ok(ExitCode::FAILURE);
            }
            println!("{} disabled", code.to_ascii_lowercase());
        }
    }
    Ok(ExitCode::SUCCESS)
}
