//! Users: search, a user's page, and the actions on a user.

use axum::Router;

use super::PanelState;

pub fn routes() -> Router<PanelState> {
    Router::new()
}
