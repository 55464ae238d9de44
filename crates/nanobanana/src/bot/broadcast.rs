//! `/broadcast` for admins (DESIGN §10 "Broadcasts"): `new TEXT` (or a photo captioned
//! `/broadcast new TEXT`) drafts it — Telegram HTML, and a last line `button: Text | URL` for a
//! URL button — then `preview`, `segment S`, `confirm`; `status|pause|resume|cancel [id]`.
//! The sending itself is `broadcast`'s.

use sqlx::PgConnection;

use super::BotError;
use crate::broadcast::{self, Control, Draft};
use crate::config::Config;
use crate::domain::growth::{check_button, check_html, Segment};
use crate::domain::TelegramId;
use crate::texts::{render, Lang};

/// A photo captioned `/broadcast …` from an admin: the command with the photo, answered in the
/// chat. Never a generation.
pub async fn from_photo(
    conn: &mut PgConnection,
    config: &Config,
    (admin, chat, lang): (TelegramId, i64, Lang),
    caption: &str,
    photo: &str,
) -> Result<Option<uuid::Uuid>, BotError> {
    let args = caption.trim_start_matches("/broadcast").trim();
    let text = handle(conn, config, admin, lang, args, Some(photo)).await?;
    crate::outbox::send_text(conn, chat, &text, None).await?;
    Ok(None)
}

/// Telegram's ceiling for one bot: messages per second.
const TELEGRAM_PER_SECOND: u32 = 30;

/// The answer to `/broadcast args` (with the photo when the command came as a caption).
pub async fn handle(
    conn: &mut PgConnection,
    config: &Config,
    admin: TelegramId,
    lang: Lang,
    args: &str,
    photo: Option<&str>,
) -> Result<String, BotError> {
    let (action, rest) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
    let id = rest.trim().parse::<i64>().ok();
    match action {
        "new" => compose(conn, admin, lang, rest, photo).await,
        "preview" => match broadcast::latest_draft(conn, admin).await? {
            Some(draft) => {
                broadcast::preview(conn, &draft, admin).await?;
                Ok(summary(conn, lang, &draft).await?)
            }
            None => Ok(render(lang, "broadcast_no_draft", &[])),
        },
        "segment" => segment(conn, admin, lang, rest).await,
        "confirm" => confirm(conn, config, admin, lang).await,
        "status" => status(conn, config, lang, id).await,
        "pause" => control(conn, lang, id, rest, Control::Pause).await,
        "resume" => control(conn, lang, id, rest, Control::Resume).await,
        "cancel" => control(conn, lang, id, rest, Control::Cancel).await,
        _ => Ok(render(lang, "broadcast_usage", &[])),
    }
}

/// `/broadcast segment …`: the draft's audience.
async fn segment(
    conn: &mut PgConnection,
    admin: TelegramId,
    lang: Lang,
    rest: &str,
) -> Result<String, BotError> {
    let Some(segment) = Segment::parse(rest) else {
        return Ok(render(lang, "broadcast_segment_usage", &[]));
    };
    let Some(mut draft) = broadcast::latest_draft(conn, admin).await? else {
        return Ok(render(lang, "broadcast_no_draft", &[]));
    };
    broadcast::set_segment(conn, draft.id, &segment).await?;
    draft.segment = segment.encode();
    summary(conn, lang, &draft).await
}

/// `/broadcast confirm`: the draft starts, with how many it goes to and when it will be done.
async fn confirm(
    conn: &mut PgConnection,
    config: &Config,
    admin: TelegramId,
    lang: Lang,
) -> Result<String, BotError> {
    let Some(draft) = broadcast::latest_draft(conn, admin).await? else {
        return Ok(render(lang, "broadcast_no_draft", &[]));
    };
    let count = broadcast::confirm(conn, draft.id).await?.unwrap_or(0);
    let rate = rate(config);
    Ok(render(
        lang,
        "broadcast_started",
        &[
            ("id", &draft.id.to_string()),
            ("count", &count.to_string()),
            ("eta", &eta(count, rate)),
            ("rate", &rate.to_string()),
        ],
    ))
}

/// `/broadcast pause|resume|cancel [id]` (the latest broadcast without an id).
async fn control(
    conn: &mut PgConnection,
    lang: Lang,
    id: Option<i64>,
    rest: &str,
    control: Control,
) -> Result<String, BotError> {
    let Some(id) = id.or(broadcast::latest(conn).await?.map(|b| b.id)) else {
        return Ok(render(lang, "broadcast_none", &[("id", rest.trim())]));
    };
    Ok(match broadcast::control(conn, id, control).await? {
        None => render(lang, "broadcast_none", &[("id", &id.to_string())]),
        Some(Ok(state)) => render(lang, "broadcast_changed", &[("id", &id.to_string()), ("state", &state)]),
        Some(Err(state)) => {
            render(lang, "broadcast_not_changed", &[("id", &id.to_string()), ("state", &state)])
        }
    })
}

async fn compose(
    conn: &mut PgConnection,
    admin: TelegramId,
    lang: Lang,
    text: &str,
    photo: Option<&str>,
) -> Result<String, BotError> {
    let mut text = text.trim().to_owned();
    let mut button = None;
    if let Some((body, last)) = text.rsplit_once('\n').map(|(b, l)| (b.to_owned(), l.to_owned())) {
        if let Some(spec) = last.trim().strip_prefix("button:") {
            let checked = spec.split_once('|').and_then(|(label, url)| check_button(label, url));
            let Some(checked) = checked else {
                return Ok(render(lang, "broadcast_bad_button", &[]));
            };
            button = Some(checked);
            text = body;
        }
    }
    if text.is_empty() && photo.is_none() {
        return Ok(render(lang, "broadcast_compose", &[]));
    }
    if let Err(problem) = check_html(&text) {
        return Ok(render(lang, "broadcast_bad_text", &[("problem", &problem)]));
    }
    let draft = Draft { text, photo: photo.map(str::to_owned), button };
    let id = broadcast::draft(conn, admin, &draft).await?;
    let stored = broadcast::find(conn, id)
        .await?
        .ok_or_else(|| BotError::Inconsistent(format!("broadcast {id} vanished")))?;
    summary(conn, lang, &stored).await
}

async fn summary(
    conn: &mut PgConnection,
    lang: Lang,
    draft: &broadcast::Broadcast,
) -> Result<String, BotError> {
    let segment = Segment::parse(&draft.segment).unwrap_or(Segment::All);
    let count = broadcast::count(conn, &segment).await?;
    Ok(render(
        lang,
        "broadcast_drafted",
        &[("id", &draft.id.to_string()), ("segment", &draft.segment), ("count", &count.to_string())],
    ))
}

async fn status(
    conn: &mut PgConnection,
    config: &Config,
    lang: Lang,
    id: Option<i64>,
) -> Result<String, BotError> {
    let found = match id {
        Some(id) => broadcast::find(conn, id).await?,
        None => broadcast::latest(conn).await?,
    };
    let Some(b) = found else {
        return Ok(render(lang, "broadcast_none", &[("id", &id.map(|i| i.to_string()).unwrap_or_default())]));
    };
    let p = broadcast::progress(conn, b.id).await?;
    Ok(render(
        lang,
        "broadcast_status",
        &[
            ("id", &b.id.to_string()),
            ("state", &b.state),
            ("segment", &b.segment),
            ("sent", &p.sent.to_string()),
            ("failed", &p.failed.to_string()),
            ("blocked", &p.blocked.to_string()),
            ("waiting", &p.waiting.to_string()),
            ("count", &b.recipients.to_string()),
            ("eta", &eta(p.waiting, rate(config))),
        ],
    ))
}

/// Messages per second a broadcast plans with: its share of Telegram's 30.
fn rate(config: &Config) -> u32 {
    (TELEGRAM_PER_SECOND * config.growth.broadcast_share_percent / 100).max(1)
}

/// Minutes to send `count` messages at `rate` a second, rounded up.
fn eta(count: i64, rate: u32) -> String {
    let seconds = count.max(0) / i64::from(rate.max(1));
    ((seconds + 59) / 60).to_string()
}
