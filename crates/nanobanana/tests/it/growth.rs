//! Growth money end to end (DESIGN §10): starter credits once per account ever, referral links
//! and rewards (exactly once per charge, taken back by a refund where unspent), promo codes
//! (exact limit under concurrency, once per user, rate-limited guessing) — through the bot and
//! the CLI, each test ending with a clean audit.

use fakes::yookassa::NotifyMode;
use futures_util::future::join_all;
use nanobanana::ledger::Settlement;

use crate::support::shop::ADMIN;
use crate::support::{Shop, TestApp};

/// The text of `user`'s newest message after sending `/command args`.
async fn say(bot: &TestApp, user: i64, command: &str, args: &str) -> String {
    let before = bot.tg.chat(user).map_or(0, |c| c.messages.len());
    bot.ask(user, "en", command, args, before + 1).await
}

async fn bonus_rows(bot: &TestApp, actor: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM transactions WHERE type = 'bonus' AND actor = $1")
        .bind(actor)
        .fetch_one(&bot.db.pool)
        .await
        .expect("count")
}

#[tokio::test]
async fn starter_credits_are_granted_once_per_account_even_after_deleteme() {
    let bot = TestApp::builder().env("STARTER_CREDITS", "10").start().await;
    let welcome = say(&bot, 1701, "start", "").await;
    assert!(welcome.contains("A welcome gift: 10 bonus credits"), "{welcome}");
    assert!(welcome.contains("Balance: 10 credits"), "{welcome}");
    assert_eq!((bot.db.balance(1701).await, bot.db.bonus_balance(1701).await), ((10, 0), (10, 0)));
    // A second /start gives nothing.
    assert!(!say(&bot, 1701, "start", "").await.contains("welcome gift"));
    // Delete everything, come back: nothing again.
    say(&bot, 1701, "deleteme", "").await;
    let confirm = bot.tg.chat(1701).expect("chat").messages.last().cloned().expect("confirmation");
    bot.press(1701, confirm.message_id, "del:yes").await;
    bot.until("erased", "SELECT COUNT(*) FROM users WHERE deleted_at IS NOT NULL", 1).await;
    let again = say(&bot, 1701, "start", "").await;
    assert!(!again.contains("welcome gift"), "{again}");
    assert_eq!(bonus_rows(&bot, "starter").await, 1);
    assert_eq!(bot.count("SELECT COUNT(*) FROM starter_claims").await, 1);
    // The claim holds no Telegram id.
    assert_eq!(bot.count("SELECT COUNT(*) FROM starter_claims WHERE id_hash LIKE '%1701%'").await, 0);
    bot.finish().await;
}

#[tokio::test]
async fn referrals_bind_new_users_once_reward_each_charge_once_and_a_refund_takes_the_unspent_back() {
    let shop =
        Shop::start(&[("REFERRAL_BONUS", "20"), ("REFERRAL_PERCENT", "10"), ("BOT_USERNAME", "nb_test_bot")])
            .await;
    let (referrer, friend, other, payer) = (1801, 1802, 1803, 1804);
    let invite = say(&shop, referrer, "invite", "").await;
    let code: String = sqlx::query_scalar("SELECT code FROM referral_codes WHERE user_id = $1")
        .bind(referrer)
        .fetch_one(&shop.db.pool)
        .await
        .expect("code");
    assert!(invite.contains(&format!("https://t.me/nb_test_bot?start=ref_{code}")), "{invite}");
    let link = format!("ref_{code}");
    assert!(say(&shop, friend, "start", &link).await.contains("You came with a friend's invitation"));
    assert!(say(&shop, referrer, "start", &link).await.contains("your own invitation link"));
    say(&shop, other, "invite", "").await;
    let other_code: String = sqlx::query_scalar("SELECT code FROM referral_codes WHERE user_id = $1")
        .bind(other)
        .fetch_one(&shop.db.pool)
        .await
        .expect("code");
    let second = say(&shop, friend, "start", &format!("ref_{other_code}")).await;
    assert!(second.contains("already came with an invitation"), "{second}");
    // A user who already paid is not new.
    shop.user(payer).await;
    let paid = shop.buy(payer, "update:p1").await;
    shop.yk().pay(&paid).expect("pay");
    shop.notified(1).await;
    shop.wait_text(payer, "начислено").await;
    assert!(say(&shop, payer, "start", &link).await.contains("для новых пользователей"));
    assert_eq!(shop.count("SELECT COUNT(*) FROM referrals").await, 1);

    // The friend's first payment, its notification ten times at once: one reward of 20.
    shop.yk().set_notify_mode(NotifyMode { duplicate: 10, ..Default::default() });
    let first = shop.buy(friend, "update:f1").await;
    shop.yk().pay(&first).expect("pay");
    shop.notified(11).await;
    shop.wait_text(referrer, "first purchase: +20 bonus credits").await;
    assert_eq!((shop.db.balance(referrer).await, shop.db.bonus_balance(referrer).await), ((20, 0), (20, 0)));
    // A later payment: 10% of its 100 credits.
    shop.yk().set_notify_mode(NotifyMode::default());
    let later = shop.buy(friend, "update:f2").await;
    shop.yk().pay(&later).expect("pay");
    shop.notified(12).await;
    shop.wait_text(referrer, "bought credits: +10 bonus credits").await;
    assert_eq!(shop.db.bonus_balance(referrer).await, (30, 0));
    assert_eq!(bonus_rows(&shop, "referral").await, 2);
    let stats = say(&shop, referrer, "invite", "").await;
    assert!(stats.contains("Joined: 1, paid: 1, earned: 30 credits"), "{stats}");

    // The referrer spends 25 of the 30; the refund of the first charge takes back the 5 left.
    let spent = shop.db.request_generation(referrer, 25).await.expect("reserved");
    let epoch = shop.db.start(spent).await;
    shop.db.settle(spent, epoch, Settlement::Commit).await.expect("committed");
    sqlx::query("UPDATE generations SET file_id = 'f' WHERE id = $1")
        .bind(spent)
        .execute(&shop.db.pool)
        .await
        .expect("delivered");
    let topup: String = sqlx::query_scalar("SELECT topup_id::TEXT FROM payments WHERE payment_id = $1")
        .bind(&first)
        .fetch_one(&shop.db.pool)
        .await
        .expect("topup");
    let refunded = say(&shop, ADMIN, "refund", &topup).await;
    assert!(refunded.starts_with("Refunded: 100 credits"), "{refunded}");
    assert_eq!((shop.db.balance(referrer).await, shop.db.bonus_balance(referrer).await), ((0, 0), (0, 0)));
    let taken: i64 = sqlx::query_scalar(
        "SELECT amount FROM transactions WHERE user_id = $1 AND type = 'deduct' AND actor = 'referral'",
    )
    .bind(referrer)
    .fetch_one(&shop.db.pool)
    .await
    .expect("take-back");
    assert_eq!(taken, 5);
    shop.finish().await;
}

#[tokio::test]
async fn a_ten_use_promo_code_redeemed_by_fifty_users_at_once_is_used_exactly_ten_times() {
    let bot = TestApp::builder().env("ADMIN_IDS", "1900").heavy(24).start().await;
    let made = say(&bot, 1900, "promo", "new Spring 15 10").await;
    assert!(made.contains("Promo code spring: 15 credits, 10 uses, no expiry"), "{made}");
    let users: Vec<i64> = (0..50).map(|i| 19_100 + i).collect();
    for &user in &users {
        bot.command(user, "en", "start");
    }
    for &user in &users {
        bot.messages(user, 1).await;
    }
    for &user in &users {
        bot.text(user, "en", "/promo SPRING");
    }
    let app = &bot;
    let answers =
        join_all(users.iter().map(|&user| async move {
            app.messages(user, 2).await.messages[1].text().unwrap_or("").to_owned()
        }))
        .await;
    let accepted = answers.iter().filter(|a| a.contains("Promo code accepted: +15")).count();
    let used_up = answers.iter().filter(|a| a.contains("used up")).count();
    assert_eq!((accepted, used_up), (10, 40), "{answers:?}");
    assert_eq!(bot.count("SELECT used FROM promo_codes").await, 10);
    assert_eq!(bonus_rows(&bot, "promo").await, 10);
    bot.finish().await;
}

#[tokio::test]
async fn promo_codes_once_per_user_expired_disabled_and_guessing_limited() {
    let bot = TestApp::builder().env("ADMIN_IDS", "1900").start().await;
    let user = 1950;
    // Created by the CLI, redeemed by a start link, case-insensitively, once.
    let created = bot.admin(&["promo", "create", "--code", "Blog-1", "--credits", "7", "--uses", "5"]).await;
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let first = say(&bot, user, "start", "promo_BLOG-1").await;
    assert!(first.contains("Promo code accepted: +7"), "{first}");
    assert!(say(&bot, user, "promo", "blog-1").await.contains("already redeemed"));
    assert_eq!(bot.db.bonus_balance(user).await, (7, 0));
    // Expired and disabled codes say so.
    say(&bot, 1900, "promo", "new late 5 3 1").await;
    sqlx::query("UPDATE promo_codes SET expires_at = now() - interval '1 minute' WHERE code = 'late'")
        .execute(&bot.db.pool)
        .await
        .expect("expire");
    assert!(say(&bot, user, "promo", "LATE").await.contains("expired"));
    say(&bot, 1900, "promo", "new off 5").await;
    let disabled = bot.admin(&["promo", "disable", "--code", "OFF"]).await;
    assert!(disabled.status.success());
    assert!(say(&bot, user, "promo", "off").await.contains("switched off"));
    let listed = bot.admin(&["promo", "list", "--json"]).await;
    let list: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    assert_eq!(list.as_array().map(Vec::len), Some(3), "{list}");
    // Bad input changes nothing; wrong guesses are limited (5 in ten minutes).
    assert!(say(&bot, user, "promo", "x").await.contains("3–32"));
    for n in 0..5 {
        assert!(say(&bot, user, "promo", &format!("guess{n}")).await.contains("no such promo code"));
    }
    assert!(say(&bot, user, "promo", "blog-1").await.contains("Too many wrong codes"));
    // A non-admin cannot create codes: "new" is a code name to them.
    assert!(say(&bot, user, "promo", "new free 1000").await.contains("Too many wrong codes"));
    assert_eq!(bot.count("SELECT COUNT(*) FROM promo_codes").await, 3);
    assert_eq!(bot.db.balance(user).await, (7, 0));
    bot.finish().await;
}
