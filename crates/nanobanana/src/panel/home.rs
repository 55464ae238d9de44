//! The panel's home page until the overview's figures and charts replace it.

use askama::Template;
use axum::response::Response;

use super::{Admin, Chrome, PanelError};

#[derive(Template)]
#[template(path = "panel/home.html")]
struct Home {
    chrome: Chrome,
}

pub async fn page(admin: Admin) -> Result<Response, PanelError> {
    super::render(Home { chrome: Chrome::new(&admin, "") })
}
