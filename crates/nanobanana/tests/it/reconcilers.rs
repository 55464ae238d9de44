//! The held YooKassa refund reconciler against the fake YooKassa: every held refund is read
//! each pass, however many older ones YooKassa keeps pending (they never change, so a fixed
//! first page would hold only them forever), and a refund still held after an hour is told to
//! the admins, once.

use fakes::yookassa::NotifyMode;
use nanobanana::payments::refund::reconcile_held_in_pages;
use uuid::Uuid;

use crate::support::shop::ADMIN;
use crate::support::Shop;

#[tokio::test]
async fn the_held_refund_reconciler_reaches_every_row_and_tells_the_admins_of_stuck_ones_once() {
    let shop = Shop::start(&[]).await;
    let users = [14_601, 14_602, 14_603];
    let mut topups = Vec::new();
    for user in users {
        topups.push(shop.paid_user(user, "en").await);
    }
    // YooKassa keeps all three refunds pending; its notifications are held back, so only the
    // reconciler can learn how they end.
    shop.yk().hold_next_refunds(3);
    shop.yk().set_notify_mode(NotifyMode { hold: true, ..Default::default() });
    let before = shop.tg.chat(ADMIN).map_or(0, |c| c.messages.len());
    for (n, topup) in topups.iter().enumerate() {
        let answer = shop.ask(ADMIN, "en", "refund", topup, before + n + 1).await;
        assert!(answer.starts_with("The refund's outcome is not known yet"), "{answer}");
    }
    let held: Vec<(Uuid, String, i64)> = sqlx::query_as(
        "SELECT r.id, r.provider_refund_id, p.user_id FROM refunds r JOIN payments p ON p.id = r.payment_id
         WHERE r.status = 'held' ORDER BY p.user_id",
    )
    .fetch_all(&shop.db.pool)
    .await
    .expect("held refunds");
    assert_eq!(held.len(), 3);
    // Asked for two hours ago; the third user's was touched last, so it comes last.
    for (n, (id, _, _)) in held.iter().enumerate() {
        sqlx::query(
            "UPDATE refunds SET created_at = now() - interval '2 hours',
                updated_at = now() - interval '3 hours' + make_interval(mins => $2) WHERE id = $1",
        )
        .bind(id)
        .bind(n as i32)
        .execute(&shop.db.pool)
        .await
        .expect("age the holds");
    }
    let (last_id, last_provider, last_user) = &held[2];
    shop.yk().finish_refund(last_provider, true, "").expect("YooKassa finished the third");

    // Pages of two: the first page (the two still pending) changes nothing; the second is read too.
    let seen = reconcile_held_in_pages(&shop.client, 2).await.expect("reconcile");
    assert_eq!(seen, 3);
    shop.wait_text(*last_user, "Refund: 100 credits were taken back").await;
    let status: String = sqlx::query_scalar("SELECT status FROM refunds WHERE id = $1")
        .bind(last_id)
        .fetch_one(&shop.db.pool)
        .await
        .expect("status");
    assert_eq!(status, "succeeded");

    // The two stuck ones: the admin is told of each once, however many passes see them.
    for (id, _, _) in &held[..2] {
        shop.wait_text(ADMIN, &format!("Refund {id} (")).await;
    }
    reconcile_held_in_pages(&shop.client, 2).await.expect("reconcile again");
    shop.drained().await;
    assert_eq!(shop.count_texts(ADMIN, "is still held after 1 h"), 2, "once per refund");
    assert_eq!(shop.count_texts(ADMIN, "has been held for over 24 h"), 0);

    // YooKassa finishes them: the next pass commits both.
    for (_, provider, _) in &held[..2] {
        shop.yk().finish_refund(provider, true, "").expect("finished");
    }
    reconcile_held_in_pages(&shop.client, 2).await.expect("reconcile at last");
    assert_eq!(shop.count("SELECT COUNT(*) FROM refunds WHERE status = 'held'").await, 0);
    for user in users {
        assert_eq!(shop.db.balance(user).await, (0, 0));
    }
    shop.finish().await;
}
