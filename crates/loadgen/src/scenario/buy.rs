//! Purchases as a person makes them in the chat: `/buy`, the pack's button, "Accept" under
//! the terms when asked, the receipt e-mail when asked (sometimes mistyped first), then the
//! "Pay" button's checkout page (the fake YooKassa's, over HTTP) or the Stars invoice (the
//! fake Telegram's). Never waits for the bot: each step reads whatever the chat shows by then,
//! so a slow or restarting bot only stretches a purchase over more steps.

use fakes::telegram::users;
use fakes::telegram::BotMessage;
use nanobanana::texts::{render, Lang};
use serde_json::Value;

use super::system::System;
use super::users::{Crowd, Purchase};

const RUB_PACKS: &[&str] = &["rub100", "rub200", "rub300"];
const STARS_PACKS: &[&str] = &["xtr100", "xtr200", "xtr300"];
/// `ContinueBuy` steps without news after which a user gives up on a purchase (e.g. the
/// answers were lost while the chat was blocked).
const PATIENCE: u32 = 40;
const CANCEL_REASONS: &[&str] = &["insufficient_funds", "expired_on_confirmation", "card_expired"];

/// What a bot message asks of a buying user.
enum Next {
    Press(i64, String),
    Contact,
    Checkout(String),
    Invoice(i64),
}

fn url_buttons(message: &BotMessage) -> Vec<String> {
    let rows = message.reply_markup().and_then(|k| k["inline_keyboard"].as_array().cloned());
    rows.unwrap_or_default()
        .iter()
        .flat_map(|row| row.as_array().cloned().unwrap_or_default())
        .filter_map(|b| b.get("url").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

fn asks_contact(text: &str) -> bool {
    [Lang::Ru, Lang::En].into_iter().any(|lang| {
        text == render(lang, "buy_receipt_ask", &[]) || text == render(lang, "buy_receipt_invalid", &[])
    })
}

fn next_step(message: &BotMessage, purchase: &Purchase) -> Option<Next> {
    if message.kind == "invoice" {
        return Some(Next::Invoice(message.message_id));
    }
    if let Some(url) = url_buttons(message).into_iter().find(|u| u.contains("/checkout/")) {
        return Some(Next::Checkout(url));
    }
    let buttons = message.callback_data();
    if let Some(accept) = buttons.iter().find(|d| d.starts_with("terms:")) {
        return Some(Next::Press(message.message_id, accept.clone()));
    }
    let pack = format!("buy:{}", purchase.pack);
    if !purchase.pressed && buttons.contains(&pack) {
        return Some(Next::Press(message.message_id, pack));
    }
    message.text().filter(|t| asks_contact(t)).map(|_| Next::Contact)
}

impl Crowd {
    /// The user paid: may ask for a refund later (the first payers at once, under
    /// `each_flow_first`, until a refund went each way).
    fn paid(&mut self, index: usize) {
        let owed = self.owed(&["refund_in_bot", "refund_cli"]).is_some();
        let asked = self.users.iter().filter(|u| u.refund_owed).count();
        let user = &mut self.users[index];
        user.paid = true;
        user.refund_owed |= owed && asked < 2;
    }

    /// `/buy`, meaning one of the ruble or Stars packs.
    pub(super) fn buy(&mut self, system: &System, index: usize, stars: bool) {
        let pack = self.rng.pick(if stars { STARS_PACKS } else { RUB_PACKS }).to_string();
        let user = &mut self.users[index];
        user.purchase = Some(Purchase { pack, pressed: false, waited: 0 });
        let (id, profile) = (user.id, user.profile.clone());
        self.record(users::command(system.tg.state(), id, &profile, "buy", None));
    }

    /// Reads the chat past what the user read before and does what the first new purchase
    /// message asks; the purchase ends with a checkout page or an invoice to pay.
    pub(super) fn continue_buy(&mut self, system: &System, index: usize) {
        let (id, profile) = (self.users[index].id, self.users[index].profile.clone());
        let mut messages = system.tg.chat(id).map(|c| c.messages).unwrap_or_default();
        messages.sort_by_key(|m| m.message_id);
        let user = &mut self.users[index];
        let Some(mut purchase) = user.purchase.take() else { return };
        let mut next = None;
        let read = user.read_up_to;
        for message in messages.iter().filter(|m| m.message_id > read) {
            next = next_step(message, &purchase);
            user.read_up_to = message.message_id;
            if next.is_some() {
                break;
            }
        }
        let Some(next) = next else {
            purchase.waited += 1;
            self.skipped += 1;
            if purchase.waited > PATIENCE {
                self.flow("buy_gave_up");
            } else {
                self.users[index].purchase = Some(purchase);
            }
            return;
        };
        purchase.waited = 0;
        let state = system.tg.state();
        let mut done = false;
        match next {
            Next::Press(message_id, data) => {
                if data.starts_with("buy:") {
                    purchase.pressed = true;
                } else {
                    self.flow("terms_accepted");
                }
                self.record(users::press_button(state, id, &profile, message_id, &data));
            }
            Next::Contact => {
                let text = if self.rng.percent(15) {
                    // A typo (no dot in the domain): asked again. A sentence would be a prompt.
                    format!("sim{id}@example")
                } else if self.rng.percent(30) {
                    format!("+7 900 {:03}-{:02}-{:02}", id % 1000, id % 100, id % 97)
                } else {
                    format!("sim{id}@example.com")
                };
                self.flow("receipt_contact_sent");
                self.record(users::text(state, id, &profile, &text));
            }
            Next::Checkout(url) => {
                self.users[index].open_payments.push((url, false));
                done = purchase.pressed;
            }
            Next::Invoice(message_id) => {
                self.users[index].open_invoices.push((message_id, false));
                done = purchase.pressed;
            }
        }
        if !done {
            self.users[index].purchase = Some(purchase);
        }
    }

    /// On the checkout page of the oldest open payment: pay (some press "Pay" again later,
    /// which YooKassa refuses), cancel with a reason, or walk away (never to be credited).
    pub(super) async fn pay_or_cancel(&mut self, index: usize) {
        let (url, paid_before) = self.users[index].open_payments.remove(0);
        let owed = self.owed(&["checkout_paid", "checkout_canceled", "checkout_walked_away"]);
        let roll = match owed {
            Some("checkout_paid") => 0,
            Some("checkout_canceled") => 70,
            Some(_) => 95,
            None => self.rng.below(100),
        };
        let (request, flow) = if paid_before {
            (self.http.post(format!("{url}/pay")), "checkout_paid_again")
        } else if roll < 65 {
            if self.rng.percent(15) || self.owed(&["checkout_paid_again"]).is_some() {
                self.users[index].open_payments.push((url.clone(), true));
            }
            (self.http.post(format!("{url}/pay")), "checkout_paid")
        } else if roll < 90 {
            let reason = *self.rng.pick(CANCEL_REASONS);
            (self.http.post(format!("{url}/cancel")).form(&[("reason", reason)]), "checkout_canceled")
        } else {
            self.flow("checkout_walked_away");
            return;
        };
        match request.send().await {
            Ok(answer) if answer.status().is_success() || answer.status().is_redirection() => {
                if flow == "checkout_paid" {
                    self.paid(index);
                }
                self.flow(flow);
            }
            // Already paid: the page says so, nothing moves.
            Ok(answer) if paid_before && answer.status() == reqwest::StatusCode::CONFLICT => self.flow(flow),
            _ => {
                self.flow("checkout_refused");
                self.skipped += 1;
            }
        }
    }

    /// The oldest open invoice: paid once (some pay it again later), twice at once, or never.
    pub(super) fn pay_invoice(&mut self, system: &System, index: usize) {
        let (id, profile) = (self.users[index].id, self.users[index].profile.clone());
        let (message_id, paid_before) = self.users[index].open_invoices.remove(0);
        let owed = self.owed(&["stars_paid_twice", "stars_paid", "stars_abandoned"]);
        let roll = match owed {
            Some("stars_paid_twice") => 60,
            Some("stars_paid") => 0,
            Some(_) => 90,
            None => self.rng.below(100),
        };
        let times = if paid_before {
            self.flow("stars_paid_again");
            1
        } else if roll < 55 {
            if self.rng.percent(20) || self.owed(&["stars_paid_again"]).is_some() {
                self.users[index].open_invoices.push((message_id, true));
            }
            self.flow("stars_paid");
            1
        } else if roll < 75 {
            self.flow("stars_paid_twice");
            2
        } else {
            self.flow("stars_abandoned");
            0
        };
        if times > 0 {
            self.paid(index);
        }
        for _ in 0..times {
            self.record(users::pay_invoice(system.tg.state(), id, &profile, message_id));
        }
    }
}
