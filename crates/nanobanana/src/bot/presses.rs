//! The buttons of issue 18 beside the result's (DESIGN §10): ❌ on a status message
//! (`cancel`), the `/styles` screen (`styles`) and the prompt examples (`examples`), dispatched
//! from `commands::on_press`. The toast, and the generation an example queued.

use sqlx::PgConnection;
use uuid::Uuid;

use super::commands::Sender;
use super::BotError;
use crate::config::Config;
use crate::domain::Button;

/// Where a button was pressed, and by which update.
pub struct Place {
    pub user: i64,
    pub chat: Option<i64>,
    pub message: Option<i64>,
    pub update_id: i64,
}

pub async fn press(
    conn: &mut PgConnection,
    config: &Config,
    sender: &Sender,
    place: &Place,
    button: Button,
) -> Result<(String, Option<Uuid>), BotError> {
    match button {
        Button::Cancel { generation } => {
            Ok((super::cancel::press(conn, sender.lang, place.user, generation).await?, None))
        }
        Button::Style { key, default } => {
            let at = (place.chat, place.message);
            Ok((super::styles::press(conn, sender, place.user, at, key, default).await?, None))
        }
        Button::Example { index } => {
            let ask = (place.user, place.chat.unwrap_or(place.user), place.update_id);
            super::examples::press(conn, config, sender, ask, index).await
        }
        // Handled by `commands`.
        _ => Ok((String::new(), None)),
    }
}
