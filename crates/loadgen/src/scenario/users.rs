//! Simulated users: each step one random user does one random thing a person does in the bot,
//! through the fake Telegram (and the fake YooKassa's checkout page for paying). The driver
//! remembers only what a person would (whether they opened the chat, blocked the bot, which
//! checkout pages and invoices they have open, how far they read the chat) plus every update
//! id it caused, for the final checks. What each action does in the chat is in `act.rs`
//! (purchases in `buy.rs`, refunds in `refunds.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use fakes::telegram::users::{self, Sent, UserProfile};

use super::refunds::CliRefunds;
use super::rng::Rng;
use super::system::System;

/// What a user can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    Start,
    Balance,
    Settings,
    PressSetting,
    Prompt,
    PhotoPrompt,
    Album,
    /// `/buy`, meaning a ruble pack: the rest follows in `ContinueBuy` steps.
    BuyRubles,
    /// `/buy`, meaning a Stars pack.
    BuyStars,
    /// The next step of a purchase the chat asks for: the pack's button, the terms' "Accept",
    /// the receipt e-mail, then the "Pay" button's page or the invoice kept for paying.
    ContinueBuy,
    /// On YooKassa's checkout page: pay, cancel, or walk away; some press "Pay" again later.
    PayOrCancel,
    /// A Stars invoice: pay it, pay it twice, or never.
    PayInvoice,
    /// The user asks support for a refund (`/paysupport`); the operator refunds one of their
    /// charges with `/refund` in the bot or `nanobanana admin refund`.
    Refund,
    Block,
    ComeBack,
    /// 🔁 under a delivered picture: the same request again, charged like any other.
    Regenerate,
    /// ✏️ under a delivered picture, then a new prompt (an edit of that picture: the Gemini
    /// conversation that made it is continued).
    Edit,
    /// 📎 under a delivered picture: the original as a document.
    Original,
    /// `/invite`: the user's referral link (others may then join by it).
    Invite,
    /// `/promo CODE`: an open, a used-up, an expired or a made-up code, some typed twice.
    Promo,
}

/// The flows a short run (`each_flow_first`) must show at least once each.
pub const REQUIRED_FLOWS: [&str; 7] = [
    "terms_accepted",
    "receipt_contact_sent",
    "checkout_paid",
    "stars_paid",
    "stars_paid_twice",
    "refund_in_bot",
    "refund_cli",
];

#[derive(Debug, Clone)]
pub(super) struct User {
    pub(super) id: i64,
    pub(super) profile: UserProfile,
    pub(super) started: bool,
    pub(super) blocked: bool,
    /// The purchase under way, if any.
    pub(super) purchase: Option<Purchase>,
    /// The last bot message the user read for a purchase step.
    pub(super) read_up_to: i64,
    /// Checkout page URLs the user has not paid or canceled yet (and paid ones to press again).
    pub(super) open_payments: Vec<(String, bool)>,
    /// Invoice message ids not paid yet (and paid ones to pay again).
    pub(super) open_invoices: Vec<(i64, bool)>,
    /// Whether the user ever paid (so may ask for a refund).
    pub(super) paid: bool,
    /// Asks for a refund as soon as a charge of theirs is credited (`each_flow_first`).
    pub(super) refund_owed: bool,
}

impl User {
    fn paying(&self) -> bool {
        !self.blocked
            && (self.purchase.is_some()
                || self.refund_owed
                || !self.open_payments.is_empty()
                || !self.open_invoices.is_empty())
    }
}

/// A purchase from `/buy` until its checkout page or invoice shows up.
#[derive(Debug, Clone)]
pub(super) struct Purchase {
    /// The pack to press on the `/buy` screen.
    pub(super) pack: String,
    pub(super) pressed: bool,
    /// `ContinueBuy` steps in a row that found nothing new (the bot had not answered yet).
    pub(super) waited: u32,
}

pub struct Crowd {
    pub(super) users: Vec<User>,
    pub(super) rng: Rng,
    pub(super) http: reqwest::Client,
    pub(super) faulty_prompts: bool,
    pub(super) persistent_retries: bool,
    /// Every update the users caused, by id.
    pub updates: BTreeSet<i64>,
    pub actions: BTreeMap<Action, u64>,
    /// Actions the fake refused (e.g. a button that was edited away): skipped, not errors.
    pub skipped: u64,
    /// How the purchase and refund actions went (paid, paid twice, canceled, refund via CLI…).
    pub flows: BTreeMap<&'static str, u64>,
    /// `nanobanana admin refund` runs in flight (the operator's shell), awaited at the end.
    pub(super) cli: CliRefunds,
    /// Every way a purchase or refund can go happens once before chance decides (so that a
    /// short run meets each); see `Crowd::each_flow_first`.
    each_flow_first: bool,
    steps: u64,
    /// Users who blocked the bot at some point (their deliveries may be dropped).
    pub ever_blocked: BTreeSet<i64>,
    pub(super) next_prompt: u64,
}

impl Crowd {
    /// `count` users from `first_id`; `faulty_prompts` adds Gemini markers to some prompts.
    pub fn new(
        first_id: i64,
        count: usize,
        seed: u64,
        faulty_prompts: bool,
        persistent_retries: bool,
    ) -> Self {
        let mut rng = Rng::new(seed);
        let users = (0..count as i64)
            .map(|i| User {
                id: first_id + i,
                profile: UserProfile {
                    first_name: Some(format!("Sim{i}")),
                    username: None,
                    language_code: Some(if rng.percent(50) { "ru" } else { "en" }.to_owned()),
                },
                started: false,
                blocked: false,
                purchase: None,
                read_up_to: 0,
                open_payments: Vec::new(),
                open_invoices: Vec::new(),
                paid: false,
                refund_owed: false,
            })
            .collect();
        // The checkout's answer is a redirect to the shop: read, not followed.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self {
            users,
            rng,
            http,
            faulty_prompts,
            persistent_retries,
            updates: BTreeSet::new(),
            actions: BTreeMap::new(),
            skipped: 0,
            flows: BTreeMap::new(),
            cli: CliRefunds::default(),
            each_flow_first: false,
            steps: 0,
            ever_blocked: BTreeSet::new(),
            next_prompt: 0,
        }
    }

    /// The first steps start purchases of both kinds, and the first outcomes of paying and
    /// refunding go each way once (paid, paid twice, canceled, refunded in the bot and from
    /// the shell…) before chance decides.
    pub fn each_flow_first(&mut self) {
        self.each_flow_first = true;
    }

    /// Under `each_flow_first`: whether a flow the short run must show has not happened yet
    /// (`REQUIRED_FLOWS`, and a refund committed one way or the other). The acting phase goes
    /// on past its duration (up to a limit) until none is, so a slow machine delays the run
    /// instead of failing it.
    pub fn owes_required(&self) -> bool {
        self.each_flow_first
            && (REQUIRED_FLOWS.iter().any(|n| !self.flows.contains_key(n))
                || !["refund_bot_refunded", "refund_cli_refunded"].iter().any(|n| self.flows.contains_key(n)))
    }

    /// The first of `names` that has not happened yet, under `each_flow_first`.
    pub(super) fn owed(&self, names: &[&'static str]) -> Option<&'static str> {
        if !self.each_flow_first {
            return None;
        }
        names.iter().find(|n| !self.flows.contains_key(*n)).copied()
    }

    pub fn ids(&self) -> impl Iterator<Item = i64> + '_ {
        self.users.iter().map(|u| u.id)
    }

    /// Gives every user an account with `credits` (half of them; the others must buy).
    pub async fn fund(&self, system: &System, credits: i64) -> anyhow::Result<()> {
        for (n, user) in self.users.iter().enumerate() {
            let new =
                nanobanana::db::users::NewUser { telegram_id: user.id, username: None, first_name: None };
            let mut conn = system.pool.acquire().await?;
            nanobanana::db::users::ensure(&mut conn, &new).await?;
            if n % 2 == 1 {
                continue;
            }
            let reason = nanobanana::ledger::Reason::parse("scenario start")?;
            let key = format!("scenario-fund-{}", user.id);
            let adjustment = nanobanana::ledger::Adjustment {
                user_id: user.id,
                direction: nanobanana::ledger::Direction::Grant,
                credits: nanobanana::domain::Credits::new(credits)?,
                reason: &reason,
                actor: "scenario",
                idempotency_key: &key,
            };
            let mut tx = system.pool.begin().await?;
            nanobanana::ledger::adjust(&mut tx, &adjustment).await?;
            tx.commit().await?;
        }
        Ok(())
    }

    fn choose(&mut self, index: usize) -> Action {
        let user = &self.users[index];
        if user.blocked {
            return Action::ComeBack;
        }
        if !user.started {
            return Action::Start;
        }
        if user.refund_owed {
            return Action::Refund;
        }
        // Between pressing a pack and the "Pay" button the bot may ask for the receipt
        // contact, and a person answers that before writing anything else (a prompt or a
        // command there leaves the question, and the address sent after it is a prompt).
        if user.purchase.as_ref().is_some_and(|p| p.pressed) {
            return Action::ContinueBuy;
        }
        let mut choices = vec![
            (Action::Start, 2),
            (Action::Balance, 3),
            (Action::Settings, 4),
            (Action::PressSetting, 4),
            (Action::Prompt, 40),
            (Action::PhotoPrompt, 10),
            (Action::Album, 6),
            (Action::BuyRubles, 5),
            (Action::BuyStars, 4),
            (Action::Refund, if user.paid { 6 } else { 1 }),
            (Action::Block, 2),
            (Action::Regenerate, 5),
            (Action::Edit, 4),
            (Action::Original, 3),
            (Action::Invite, 2),
            (Action::Promo, 3),
        ];
        // A purchase under way has the user's attention.
        if user.purchase.is_some() {
            choices.push((Action::ContinueBuy, 100));
        }
        if !user.open_payments.is_empty() {
            choices.push((Action::PayOrCancel, 60));
        }
        if !user.open_invoices.is_empty() {
            choices.push((Action::PayInvoice, 60));
        }
        self.rng.weighted(&choices)
    }

    /// One user does one thing.
    pub async fn step(&mut self, system: &Arc<System>) -> anyhow::Result<()> {
        // Someone in the middle of paying finishes within moments, not after everyone else's
        // next move: most steps go to a user with a purchase or a payment open.
        self.steps += 1;
        let opening = self.each_flow_first && self.steps <= 6 && self.users.len() >= 6;
        let paying: Vec<usize> = (0..self.users.len()).filter(|i| self.users[*i].paying()).collect();
        let index = if opening {
            self.steps as usize - 1
        } else if !paying.is_empty() && self.rng.percent(60) {
            *self.rng.pick(&paying)
        } else {
            self.rng.below(self.users.len() as u64) as usize
        };
        let action = match opening {
            true if self.steps % 2 == 0 => Action::BuyStars,
            true => Action::BuyRubles,
            false => self.choose(index),
        };
        *self.actions.entry(action).or_default() += 1;
        self.act(system, index, action).await
    }

    pub(super) fn flow(&mut self, what: &'static str) {
        *self.flows.entry(what).or_default() += 1;
    }

    pub(super) fn record(&mut self, sent: Result<Sent, users::ActionError>) {
        match sent {
            Ok(sent) => {
                self.updates.insert(sent.update_id);
            }
            Err(_) => self.skipped += 1,
        }
    }
}
