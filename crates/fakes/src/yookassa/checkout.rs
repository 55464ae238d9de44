//! The checkout page behind `confirmation_url`: a plain HTML page with Pay and Cancel (with a
//! reason) that works in a browser; after a choice it redirects to the payment's `return_url`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header::LOCATION;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::lifecycle::{self, REASONS};
use super::state::YkState;

pub fn router() -> Router<Arc<YkState>> {
    Router::new()
        .route("/checkout/{id}", get(page))
        .route("/checkout/{id}/pay", post(pay))
        .route("/checkout/{id}/cancel", post(cancel))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

async fn page(State(state): State<Arc<YkState>>, Path(id): Path<String>) -> Response {
    let Some(payment) = state.lock().payments.get(&id).cloned() else {
        return (StatusCode::NOT_FOUND, Html("<h1>Payment not found</h1>".to_string())).into_response();
    };
    let o = &payment.object;
    let amount = format!(
        "{} {}",
        o["amount"]["value"].as_str().unwrap_or(""),
        o["amount"]["currency"].as_str().unwrap_or("")
    );
    let description = escape(o["description"].as_str().unwrap_or(""));
    let status = escape(payment.status());
    let id = escape(&id);
    let options: String =
        REASONS.iter().map(|(r, _)| format!("<option value=\"{r}\">{r}</option>")).collect();
    let actions = if payment.status() == "pending" {
        format!(
            "<form method=\"post\" action=\"/checkout/{id}/pay\"><p>Card 5555 5555 5555 4444</p>\
             <button type=\"submit\">Pay {amount}</button></form>\
             <form method=\"post\" action=\"/checkout/{id}/cancel\"><select name=\"reason\">{options}</select>\
             <button type=\"submit\">Cancel</button></form>"
        )
    } else {
        String::new()
    };
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Fake YooKassa checkout</title></head>\
         <body><h1>Fake YooKassa checkout</h1><p>Payment <code>{id}</code></p><p>{description}</p>\
         <p>Amount: <b>{amount}</b></p><p>Status: <b id=\"status\">{status}</b></p>{actions}</body></html>"
    ))
    .into_response()
}

fn after(state: &YkState, id: &str, result: Result<serde_json::Value, lifecycle::ChangeError>) -> Response {
    if let Err(error) = result {
        return (StatusCode::CONFLICT, Html(format!("<h1>{}</h1>", escape(&error.to_string()))))
            .into_response();
    }
    let inner = state.lock();
    match inner.return_urls.get(id).cloned() {
        Some(url) => (StatusCode::SEE_OTHER, [(LOCATION, url)]).into_response(),
        None => {
            Html(format!("<h1>Done</h1><p><a href=\"/checkout/{}\">Back</a></p>", escape(id))).into_response()
        }
    }
}

async fn pay(State(state): State<Arc<YkState>>, Path(id): Path<String>) -> Response {
    let result = lifecycle::pay(&state, &id);
    after(&state, &id, result)
}

#[derive(Deserialize)]
struct CancelForm {
    reason: String,
}

async fn cancel(
    State(state): State<Arc<YkState>>,
    Path(id): Path<String>,
    Form(form): Form<CancelForm>,
) -> Response {
    let result = lifecycle::cancel(&state, &id, &form.reason);
    after(&state, &id, result)
}
