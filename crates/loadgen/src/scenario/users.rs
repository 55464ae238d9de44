//! Simulated users: each step one random user does one random thing a person does in the bot,
//! through the fake Telegram (and the fake YooKassa's checkout page for paying). The driver
//! remembers only what a person would (whether they opened the chat, blocked the bot, which
//! payments they have open) plus every update id it caused, for the final checks.
//!
//! EXTENSION POINTS (marked `EXTENSION:` below) for actions whose bot side is being built:
//! Telegram Stars packs, refunds, and the 🔁 regenerate / ✏️ edit / 📎 original buttons.
//! Each needs a variant in `Action`, a weight in `Crowd::choose` and a match arm in
//! `Crowd::act`; the checks in `check.rs` then cover them (Stars charges need a clause there).

use std::collections::{BTreeMap, BTreeSet};

use fakes::telegram::users::{self, ImageSpec, Sent, UserProfile};
use nanobanana::config::Pack;

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
    BuyRubles,
    PayOrCancel,
    Block,
    ComeBack,
    /// 🔁 under a delivered picture: the same request again, charged like any other.
    Regenerate,
    /// ✏️ under a delivered picture, then a new prompt (the picture is its reference).
    Edit,
    /// 📎 under a delivered picture: the original as a document.
    Original,
    // EXTENSION: BuyStars (send /buy, press a Stars pack, `tg.pay_invoice` the invoice; some
    // twice), Refund (the bot's refund command or button).
}

/// How a ruble purchase starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuyFlow {
    /// The bot has no `/buy` screen yet: the driver starts the payment the way the bot's
    /// handler will (`payments::start_yookassa`, keyed to a fresh source), and the user pays
    /// or cancels on YooKassa's page. Notifications and the reconciler run in `serve`.
    Direct,
    // EXTENSION: `Bot` — /buy, press a ruble pack, read the "Pay" button's URL from the chat.
}

#[derive(Debug, Clone)]
struct User {
    id: i64,
    profile: UserProfile,
    started: bool,
    blocked: bool,
    /// YooKassa payment ids the user has not paid or canceled yet.
    open_payments: Vec<String>,
}

/// Prompts: most are plain; some carry a fake-Gemini marker that decides the outcome of every
/// attempt (permanent refusals, and with `persistent_retries` retryable errors that exhaust).
const PERMANENT: &[&str] =
    &["[[blocked]]", "[[image_safety]]", "[[no_image]]", "[[text_only]]", "[[finish:RECITATION]]"];
const PERSISTENT_RETRYABLE: &[&str] = &["[[503]]", "[[500]]"];

pub struct Crowd {
    users: Vec<User>,
    rng: Rng,
    buy: BuyFlow,
    pack: Pack,
    faulty_prompts: bool,
    persistent_retries: bool,
    /// Every update the users caused, by id.
    pub updates: BTreeSet<i64>,
    pub actions: BTreeMap<Action, u64>,
    /// Actions the fake refused (e.g. a button that was edited away): skipped, not errors.
    pub skipped: u64,
    /// Users who blocked the bot at some point (their deliveries may be dropped).
    pub ever_blocked: BTreeSet<i64>,
    next_prompt: u64,
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
                open_payments: Vec::new(),
            })
            .collect();
        let pack = Pack {
            id: "rub100".to_owned(),
            price: 10_000,
            credits: nanobanana::domain::Credits::new(100).unwrap_or_else(|_| unreachable!("100 > 0")),
        };
        Self {
            users,
            rng,
            buy: BuyFlow::Direct,
            pack,
            faulty_prompts,
            persistent_retries,
            updates: BTreeSet::new(),
            actions: BTreeMap::new(),
            skipped: 0,
            ever_blocked: BTreeSet::new(),
            next_prompt: 0,
        }
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
        let mut choices = vec![
            (Action::Start, 2),
            (Action::Balance, 3),
            (Action::Settings, 4),
            (Action::PressSetting, 4),
            (Action::Prompt, 40),
            (Action::PhotoPrompt, 10),
            (Action::Album, 6),
            (Action::BuyRubles, 6),
            (Action::Block, 2),
        ];
        if !user.open_payments.is_empty() {
            choices.push((Action::PayOrCancel, 40));
        }
        choices.extend([(Action::Regenerate, 5), (Action::Edit, 4), (Action::Original, 3)]);
        // EXTENSION: weights for BuyStars and Refund.
        self.rng.weighted(&choices)
    }

    /// One user does one thing.
    pub async fn step(&mut self, system: &System) -> anyhow::Result<()> {
        let index = self.rng.below(self.users.len() as u64) as usize;
        let action = self.choose(index);
        *self.actions.entry(action).or_default() += 1;
        self.act(system, index, action).await
    }

    fn prompt_text(&mut self) -> String {
        self.next_prompt += 1;
        let n = self.next_prompt;
        let mut text = format!("a banana astronaut #{n}");
        if self.faulty_prompts && self.rng.percent(8) {
            text.push(' ');
            let marker: &&str = self.rng.pick(PERMANENT);
            text.push_str(marker);
        } else if self.persistent_retries && self.rng.percent(2) {
            text.push(' ');
            let marker: &&str = self.rng.pick(PERSISTENT_RETRYABLE);
            text.push_str(marker);
        }
        text
    }

    fn record(&mut self, sent: Result<Sent, users::ActionError>) {
        match sent {
            Ok(sent) => {
                self.updates.insert(sent.update_id);
            }
            Err(_) => self.skipped += 1,
        }
    }

    async fn act(&mut self, system: &System, index: usize, action: Action) -> anyhow::Result<()> {
        let state = system.tg.state();
        let (id, profile) = (self.users[index].id, self.users[index].profile.clone());
        match action {
            Action::Start => {
                let sent = users::command(state, id, &profile, "start", None);
                self.record(sent);
                self.users[index].started = true;
            }
            Action::Balance => self.record(users::command(state, id, &profile, "balance", None)),
            Action::Settings => self.record(users::command(state, id, &profile, "settings", None)),
            Action::PressSetting => {
                // The latest settings screen in the chat, any of its buttons.
                let chat = system.tg.chat(id);
                let screen = chat.as_ref().and_then(|c| {
                    c.messages.iter().rev().find(|m| {
                        m.callback_data().iter().any(|d| d.starts_with("st:") || d.starts_with("lang:"))
                    })
                });
                let Some(screen) = screen else {
                    self.skipped += 1;
                    return Ok(());
                };
                let buttons = screen.callback_data();
                let data = self.rng.pick(&buttons).clone();
                self.record(users::press_button(state, id, &profile, screen.message_id, &data));
            }
            Action::Prompt => {
                let text = self.prompt_text();
                self.record(users::text(state, id, &profile, &text));
            }
            Action::PhotoPrompt => {
                let spec = ImageSpec {
                    caption: Some(self.prompt_text()),
                    width: Some(64),
                    height: Some(48),
                    ..Default::default()
                };
                self.record(users::photo(state, id, &profile, &spec, None));
            }
            Action::Album => {
                let n = 2 + self.rng.below(2) as usize;
                let mut items: Vec<ImageSpec> = (0..n)
                    .map(|_| ImageSpec { width: Some(48), height: Some(48), ..Default::default() })
                    .collect();
                items[0].caption = Some(self.prompt_text());
                match users::album(state, id, &profile, &items, false) {
                    Ok(sent) => self.updates.extend(sent.iter().map(|s| s.update_id)),
                    Err(_) => self.skipped += 1,
                }
            }
            Action::BuyRubles => match self.buy {
                BuyFlow::Direct => {
                    let source = format!("scenario:{}", uuid::Uuid::new_v4());
                    let started =
                        nanobanana::payments::start_yookassa(&system.payments, id, &self.pack, &source, None)
                            .await;
                    match started {
                        Ok(url) => {
                            let payment = url.rsplit('/').next().unwrap_or_default().to_owned();
                            self.users[index].open_payments.push(payment);
                        }
                        // A YooKassa fault the chaos driver armed: the user tries again later.
                        Err(_) => self.skipped += 1,
                    }
                }
            },
            Action::PayOrCancel => {
                let open = &mut self.users[index].open_payments;
                let payment = open.remove(0);
                let roll = self.rng.below(100);
                let result = if roll < 70 {
                    system.yk.pay(&payment).map(|_| ())
                } else if roll < 95 {
                    let reason =
                        *self.rng.pick(&["insufficient_funds", "expired_on_confirmation", "card_expired"]);
                    system.yk.cancel(&payment, reason).map(|_| ())
                } else {
                    Ok(()) // walks away: stays pending, must never be credited
                };
                if result.is_err() {
                    self.skipped += 1;
                }
            }
            Action::Regenerate | Action::Edit | Action::Original => {
                let prefix = match action {
                    Action::Regenerate => "regen:",
                    Action::Edit => "edit:",
                    _ => "orig:",
                };
                // One of the pictures in the chat, that button under it.
                let chat = system.tg.chat(id);
                let pictures: Vec<(i64, String)> = chat
                    .iter()
                    .flat_map(|c| c.messages.iter())
                    .filter(|m| m.kind == "photo")
                    .filter_map(|m| {
                        let data = m.callback_data().into_iter().find(|d| d.starts_with(prefix))?;
                        Some((m.message_id, data))
                    })
                    .collect();
                if pictures.is_empty() {
                    self.skipped += 1;
                    return Ok(());
                }
                let (message_id, data) = self.rng.pick(&pictures).clone();
                self.record(users::press_button(state, id, &profile, message_id, &data));
                if action == Action::Edit {
                    let text = self.prompt_text();
                    self.record(users::text(state, id, &profile, &text));
                }
            }
            Action::Block => {
                self.record(users::set_blocked(state, id, &profile, true));
                self.users[index].blocked = true;
                self.ever_blocked.insert(id);
            }
            Action::ComeBack => {
                self.record(users::set_blocked(state, id, &profile, false));
                self.record(users::command(state, id, &profile, "start", None));
                self.users[index].blocked = false;
            }
        }
        Ok(())
    }
}
