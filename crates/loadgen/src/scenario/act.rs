//! What each user action does in the chat, through the fake Telegram: commands, the settings
//! screen's buttons, prompts (plain, with a photo, as an album, some carrying fake-Gemini
//! markers), the buttons under a delivered picture, blocking the bot and coming back.
//! [`Crowd::act`] carries out any [`Action`]; purchases go on in `buy.rs`, refunds in
//! `refunds.rs`.

use std::sync::Arc;

use fakes::telegram::users::{self, ImageSpec, UserProfile};

use super::system::System;
use super::users::{Action, Crowd};

/// Prompts: most are plain; some carry a fake-Gemini marker that decides the outcome of every
/// attempt (permanent refusals, and with `persistent_retries` retryable errors that exhaust).
const PERMANENT: &[&str] =
    &["[[blocked]]", "[[image_safety]]", "[[no_image]]", "[[text_only]]", "[[finish:RECITATION]]"];
const PERSISTENT_RETRYABLE: &[&str] = &["[[503]]", "[[500]]"];

impl Crowd {
    /// User `index` does `action`.
    pub(super) async fn act(
        &mut self,
        system: &Arc<System>,
        index: usize,
        action: Action,
    ) -> anyhow::Result<()> {
        let state = system.tg.state();
        let (id, profile) = (self.users[index].id, self.users[index].profile.clone());
        match action {
            Action::Start => self.start_maybe_referred(system, index).await?,
            Action::Invite => self.growth_action(system, index, true),
            Action::Promo => self.growth_action(system, index, false),
            Action::Balance => self.record(users::command(state, id, &profile, "balance", None)),
            Action::Settings => self.record(users::command(state, id, &profile, "settings", None)),
            Action::PressSetting => self.press_setting(system, id, &profile),
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
            Action::Album => self.album(system, id, &profile),
            Action::BuyRubles => self.buy(system, index, false),
            Action::BuyStars => self.buy(system, index, true),
            Action::ContinueBuy => self.continue_buy(system, index),
            Action::PayOrCancel => self.pay_or_cancel(index).await,
            Action::PayInvoice => self.pay_invoice(system, index),
            Action::Refund => self.refund(system, index).await?,
            Action::Regenerate | Action::Edit | Action::Original => {
                self.picture_button(system, id, &profile, action);
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

    /// The next prompt's text, now and then with a marker.
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

    /// Any button of the latest settings screen in the chat (skipped when there is none).
    fn press_setting(&mut self, system: &System, id: i64, profile: &UserProfile) {
        let chat = system.tg.chat(id);
        let screen = chat.as_ref().and_then(|c| {
            c.messages
                .iter()
                .rev()
                .find(|m| m.callback_data().iter().any(|d| d.starts_with("st:") || d.starts_with("lang:")))
        });
        let Some(screen) = screen else {
            self.skipped += 1;
            return;
        };
        let buttons = screen.callback_data();
        let data = self.rng.pick(&buttons).clone();
        self.record(users::press_button(system.tg.state(), id, profile, screen.message_id, &data));
    }

    /// Two or three photos as one album, the first captioned with a prompt.
    fn album(&mut self, system: &System, id: i64, profile: &UserProfile) {
        let n = 2 + self.rng.below(2) as usize;
        let mut items: Vec<ImageSpec> =
            (0..n).map(|_| ImageSpec { width: Some(48), height: Some(48), ..Default::default() }).collect();
        items[0].caption = Some(self.prompt_text());
        match users::album(system.tg.state(), id, profile, &items, false) {
            Ok(sent) => self.updates.extend(sent.iter().map(|s| s.update_id)),
            Err(_) => self.skipped += 1,
        }
    }

    /// 🔁, ✏️ (then a new prompt) or 📎 under one of the pictures in the chat (skipped when
    /// there is none).
    fn picture_button(&mut self, system: &System, id: i64, profile: &UserProfile, action: Action) {
        let prefix = match action {
            Action::Regenerate => "regen:",
            Action::Edit => "edit:",
            _ => "orig:",
        };
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
            return;
        }
        let (message_id, data) = self.rng.pick(&pictures).clone();
        let state = system.tg.state();
        self.record(users::press_button(state, id, profile, message_id, &data));
        if action == Action::Edit {
            let text = self.prompt_text();
            self.record(users::text(state, id, profile, &text));
        }
    }
}
