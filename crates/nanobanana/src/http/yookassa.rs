//! `POST /yookassa/webhook` (DESIGN §4, §9). YooKassa signs nothing, so: the sender's network
//! first (403 and nothing stored otherwise; `X-Forwarded-For` only from our proxies), then the
//! raw event stored, then the object read back with `GET` and settled on that answer alone.
//! 200 only once the effect is committed; a database or API failure is a 500, so YooKassa
//! delivers again. Unknown or foreign objects are 200 with a warning.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{post, MethodRouter};
use axum::{Extension, Router};

use super::AppState;
use crate::payments::{self, network, YooKassa};
use crate::yookassa::Notification;

/// Notifications are a few KiB.
pub const MAX_NOTIFICATION_BYTES: usize = 64 * 1024;

type Reply = (StatusCode, &'static str);

/// The route for `serve`'s router: live when YooKassa is configured, 404 otherwise.
pub fn route(state: &AppState) -> MethodRouter<AppState> {
    match state.bot.yookassa.clone() {
        Some(yk) => handler(yk),
        None => post(|| async { (StatusCode::NOT_FOUND, "YooKassa is not configured") }),
    }
}

fn handler<S: Clone + Send + Sync + 'static>(yk: Arc<YooKassa>) -> MethodRouter<S> {
    post(webhook).with_state(yk).layer(DefaultBodyLimit::max(MAX_NOTIFICATION_BYTES))
}

/// The webhook alone, for tests and tools; serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` so the peer address is known.
pub fn router(yk: Arc<YooKassa>) -> Router {
    Router::new().route("/yookassa/webhook", handler(yk))
}

/// Serves `router(yk)` on `listener` with peer addresses until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, yk: Arc<YooKassa>) -> std::io::Result<()> {
    axum::serve(listener, router(yk).into_make_service_with_connect_info::<SocketAddr>()).await
}

pub async fn webhook(
    State(yk): State<Arc<YooKassa>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let Some(Extension(ConnectInfo(peer))) = peer else {
        tracing::error!("no peer address: serve with connect info; notification refused");
        return (StatusCode::FORBIDDEN, "unknown sender");
    };
    let ip = network::client_ip(peer.ip(), network::forwarded_for(&headers), &yk.config.trusted_proxies);
    if !yk.trusts(ip) {
        tracing::warn!(%ip, %peer, "payment notification from outside YooKassa's networks refused");
        return (StatusCode::FORBIDDEN, "not from YooKassa");
    }
    let Ok(raw) = serde_json::from_slice::<serde_json::Value>(&body) else {
        tracing::warn!(%ip, "payment notification is not JSON");
        return (StatusCode::BAD_REQUEST, "malformed JSON");
    };
    let notification = serde_json::from_value::<Notification>(raw.clone()).ok();
    let (event, object_id) = match &notification {
        Some(n) => (Some(n.event.as_str()), Some(n.object.id.as_str())),
        None => (None, None),
    };
    let remote = ip.to_string();
    if let Err(e) =
        payments::record_event(&yk.pool, "notification", event, object_id, Some(&remote), &raw).await
    {
        tracing::error!(error = %e, "storing a payment notification failed; YooKassa will redeliver");
        return (StatusCode::INTERNAL_SERVER_ERROR, "internal error");
    }
    let Some(notification) = notification else {
        tracing::warn!(%ip, "not a YooKassa notification; stored and ignored");
        return (StatusCode::OK, "");
    };
    act(&yk, &notification).await
}

async fn act(yk: &YooKassa, notification: &Notification) -> Reply {
    let id = notification.object.id.as_str();
    if notification.event == "refund.succeeded" {
        return match yk.check_refund(id).await {
            Ok(settled) => {
                tracing::info!(refund_id = %id, ?settled, "refund notification settled");
                (StatusCode::OK, "")
            }
            Err(e) => {
                tracing::error!(refund_id = %id, error = %e, "settling a notified refund failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
        };
    }
    if !notification.event.starts_with("payment.") {
        tracing::warn!(event = %notification.event, object_id = %id, "notification not handled; stored");
        return (StatusCode::OK, "");
    }
    match yk.check_payment(id).await {
        Ok(settled) => {
            if let payments::Settled::Ignored(why) = settled {
                tracing::warn!(payment_id = %id, why, "notification for a payment that is not ours");
            }
            (StatusCode::OK, "")
        }
        Err(e) => {
            tracing::error!(payment_id = %id, error = %e, "settling a notified payment failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}
