//! Who may get growth credits, once (DESIGN §10 "Growth money is bonus money"): the owner of
//! `starter_claims`, `referral_codes`, `referrals`, `promo_codes`, `promo_redemptions` and
//! `promo_failures`. Never moves credits: callers pair each claim here with the ledger's bonus
//! row in the same transaction, so a claim and its credits commit together or not at all.

use sqlx::PgConnection;

use crate::domain::TelegramId;

/// The starter claim key of the Telegram account `$1`: a SHA-256 of the id, kept after
/// `/deleteme`.
const STARTER_KEY: &str = "encode(sha256(convert_to('nanobanana-starter:' || $1::BIGINT, 'UTF8')), 'hex')";

/// SQL that is true when the account `$1` has claimed its starter credits (for reads that
/// decide whether `/start` has anything to grant).
pub fn starter_claimed_sql() -> String {
    format!("EXISTS (SELECT 1 FROM starter_claims WHERE id_hash = {STARTER_KEY})")
}

/// Claims the starter credits of `user`'s account: `true` the first time ever, `false` after.
pub async fn claim_starter(conn: &mut PgConnection, user: TelegramId) -> sqlx::Result<bool> {
    let claimed = sqlx::query(&format!(
        "INSERT INTO starter_claims (id_hash) VALUES ({STARTER_KEY}) ON CONFLICT DO NOTHING"
    ))
    .bind(user)
    .execute(conn)
    .await?;
    Ok(claimed.rows_affected() == 1)
}

/// `user`'s referral code, made on first use (8 characters of `a-z0-9` from a random draw;
/// a collision draws again).
pub async fn referral_code(conn: &mut PgConnection, user: TelegramId) -> sqlx::Result<String> {
    loop {
        let fresh: String = uuid::Uuid::new_v4().simple().to_string().chars().take(8).collect();
        let code: Option<String> = sqlx::query_scalar(
            "WITH made AS (INSERT INTO referral_codes (user_id, code) VALUES ($1, $2)
                           ON CONFLICT DO NOTHING RETURNING code)
             SELECT code FROM made UNION ALL SELECT code FROM referral_codes WHERE user_id = $1 LIMIT 1",
        )
        .bind(user)
        .bind(&fresh)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(code) = code {
            return Ok(code);
        }
    }
}

/// Why a referral link did not bind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindRefused {
    UnknownCode,
    SelfReferral,
    AlreadyBound,
    /// The user generated or paid before they came with the link: not a new user.
    NotNew,
}

/// The terms a friend is bound under: the referrer's bonus at the friend's first payment and
/// their percent of each later one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReferralTerms {
    pub bonus: i64,
    pub percent: i64,
}

/// Binds `friend` to the owner of `code` under `terms`, once: not to themselves, not twice,
/// not a user who already generated or paid. The referrer on success.
pub async fn bind_referral(
    conn: &mut PgConnection,
    friend: TelegramId,
    code: &str,
    terms: ReferralTerms,
) -> sqlx::Result<Result<TelegramId, BindRefused>> {
    let referrer: Option<TelegramId> =
        sqlx::query_scalar("SELECT user_id FROM referral_codes WHERE code = $1")
            .bind(code.to_ascii_lowercase())
            .fetch_optional(&mut *conn)
            .await?;
    let Some(referrer) = referrer else {
        return Ok(Err(BindRefused::UnknownCode));
    };
    if referrer == friend {
        return Ok(Err(BindRefused::SelfReferral));
    }
    let not_new: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM generations WHERE user_id = $1)
             OR EXISTS (SELECT 1 FROM payments WHERE user_id = $1 AND status = 'succeeded')",
    )
    .bind(friend)
    .fetch_one(&mut *conn)
    .await?;
    if not_new {
        return Ok(Err(BindRefused::NotNew));
    }
    let bound = sqlx::query(
        "INSERT INTO referrals (friend_id, referrer_id, bonus, percent) VALUES ($1, $2, $3, $4)
         ON CONFLICT (friend_id) DO NOTHING",
    )
    .bind(friend)
    .bind(referrer)
    .bind(terms.bonus)
    .bind(terms.percent)
    .execute(&mut *conn)
    .await?;
    Ok(if bound.rows_affected() == 1 { Ok(referrer) } else { Err(BindRefused::AlreadyBound) })
}

/// Who brought `friend` and under which terms, if anyone; locks the binding for the rest of
/// the transaction, so two charges of one friend credited at once are rewarded one after the
/// other (and only one of them is the first).
pub async fn lock_referrer(
    conn: &mut PgConnection,
    friend: TelegramId,
) -> sqlx::Result<Option<(TelegramId, ReferralTerms)>> {
    let row: Option<(TelegramId, i64, i64)> =
        sqlx::query_as("SELECT referrer_id, bonus, percent FROM referrals WHERE friend_id = $1 FOR UPDATE")
            .bind(friend)
            .fetch_optional(conn)
            .await?;
    Ok(row.map(|(referrer, bonus, percent)| (referrer, ReferralTerms { bonus, percent })))
}

/// What `/invite` shows: friends who joined, friends who paid, and the referral credits earned
/// (rewards less what refunds took back).
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct ReferralStats {
    pub joined: i64,
    pub paid: i64,
    pub earned: i64,
}

pub async fn referral_stats(conn: &mut PgConnection, referrer: TelegramId) -> sqlx::Result<ReferralStats> {
    sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM referrals WHERE referrer_id = $1) AS joined,
                (SELECT COUNT(DISTINCT r.friend_id) FROM referrals r
                 JOIN payments p ON p.user_id = r.friend_id AND p.status = 'succeeded'
                 WHERE r.referrer_id = $1) AS paid,
                (SELECT COALESCE(SUM(CASE WHEN type = 'bonus' THEN amount ELSE -amount END), 0)::BIGINT
                 FROM transactions WHERE user_id = $1 AND actor = 'referral') AS earned",
    )
    .bind(referrer)
    .fetch_one(conn)
    .await
}

/// A promo code as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct PromoCode {
    pub id: i64,
    pub code: String,
    pub credits: i64,
    pub max_uses: i64,
    pub used: i64,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub disabled: bool,
    pub created_by: String,
}

/// What a new code is.
#[derive(Debug, Clone)]
pub struct NewPromo<'a> {
    /// Already validated and lower-case (`domain::PromoCodeName`).
    pub code: &'a str,
    pub credits: i64,
    pub max_uses: i64,
    pub days: Option<u32>,
    pub created_by: &'a str,
}

/// Creates a code; `None` if one with that name exists.
pub async fn create_promo(conn: &mut PgConnection, new: &NewPromo<'_>) -> sqlx::Result<Option<PromoCode>> {
    sqlx::query_as(
        "INSERT INTO promo_codes (code, credits, max_uses, expires_at, created_by)
         VALUES ($1, $2, $3, CASE WHEN $4::INT IS NULL THEN NULL ELSE now() + make_interval(days => $4::INT) END, $5)
         ON CONFLICT (code) DO NOTHING
         RETURNING id, code, credits, max_uses, used, expires_at, disabled, created_by",
    )
    .bind(new.code)
    .bind(new.credits)
    .bind(new.max_uses)
    .bind(new.days.map(|d| i32::try_from(d).unwrap_or(i32::MAX)))
    .bind(new.created_by)
    .fetch_optional(conn)
    .await
}

pub async fn list_promos(conn: &mut PgConnection) -> sqlx::Result<Vec<PromoCode>> {
    sqlx::query_as(
        "SELECT id, code, credits, max_uses, used, expires_at, disabled, created_by
         FROM promo_codes ORDER BY id DESC LIMIT 200",
    )
    .fetch_all(conn)
    .await
}

/// Disables a code; `false` if there is none by that name.
pub async fn disable_promo(conn: &mut PgConnection, code: &str) -> sqlx::Result<bool> {
    let done = sqlx::query("UPDATE promo_codes SET disabled = TRUE WHERE code = $1")
        .bind(code.to_ascii_lowercase())
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Why a code was not redeemed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromoRefused {
    Unknown,
    Disabled,
    Expired,
    UsedUp,
    AlreadyRedeemed,
}

/// Takes one use of `code` for `user` under the code's row lock (so the limit is exact however
/// many redeem at once): the code's id and credits, or why not. The caller grants the credits
/// in the same transaction.
pub async fn redeem_promo(
    conn: &mut PgConnection,
    user: TelegramId,
    code: &str,
) -> sqlx::Result<Result<(i64, i64), PromoRefused>> {
    type Locked = (i64, i64, bool, bool, bool);
    let row: Option<Locked> = sqlx::query_as(
        "SELECT id, credits, disabled, COALESCE(expires_at <= now(), FALSE), used >= max_uses
         FROM promo_codes WHERE code = $1 FOR UPDATE",
    )
    .bind(code)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((id, credits, disabled, expired, used_up)) = row else {
        return Ok(Err(PromoRefused::Unknown));
    };
    let mine: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM promo_redemptions WHERE code_id = $1 AND user_id = $2)",
    )
    .bind(id)
    .bind(user)
    .fetch_one(&mut *conn)
    .await?;
    let refused = match () {
        _ if mine => Some(PromoRefused::AlreadyRedeemed),
        _ if disabled => Some(PromoRefused::Disabled),
        _ if expired => Some(PromoRefused::Expired),
        _ if used_up => Some(PromoRefused::UsedUp),
        _ => None,
    };
    if let Some(refused) = refused {
        return Ok(Err(refused));
    }
    sqlx::query("INSERT INTO promo_redemptions (code_id, user_id) VALUES ($1, $2)")
        .bind(id)
        .bind(user)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE promo_codes SET used = used + 1 WHERE id = $1").bind(id).execute(&mut *conn).await?;
    Ok(Ok((id, credits)))
}

/// Wrong guesses allowed per user in `PROMO_GUESS_WINDOW`.
pub const PROMO_GUESSES: i32 = 5;
const PROMO_GUESS_WINDOW_SECS: f64 = 600.0;

/// Whether `user` may try a code now (fewer than `PROMO_GUESSES` wrong guesses in the window).
pub async fn may_guess(conn: &mut PgConnection, user: TelegramId) -> sqlx::Result<bool> {
    let failures: Option<i32> = sqlx::query_scalar(
        "SELECT failures FROM promo_failures
         WHERE user_id = $1 AND window_start > now() - make_interval(secs => $2)",
    )
    .bind(user)
    .bind(PROMO_GUESS_WINDOW_SECS)
    .fetch_optional(conn)
    .await?;
    Ok(failures.unwrap_or(0) < PROMO_GUESSES)
}

/// Counts a wrong guess (an unknown code) of `user`.
pub async fn wrong_guess(conn: &mut PgConnection, user: TelegramId) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO promo_failures (user_id, failures) VALUES ($1, 1)
         ON CONFLICT (user_id) DO UPDATE SET
             failures = CASE WHEN promo_failures.window_start > now() - make_interval(secs => $2)
                             THEN promo_failures.failures + 1 ELSE 1 END,
             window_start = CASE WHEN promo_failures.window_start > now() - make_interval(secs => $2)
                                 THEN promo_failures.window_start ELSE now() END",
    )
    .bind(user)
    .bind(PROMO_GUESS_WINDOW_SECS)
    .execute(conn)
    .await?;
    Ok(())
}
