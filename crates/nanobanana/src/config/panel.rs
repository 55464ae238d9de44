//! The operator's panel (DESIGN §10): on when `PANEL_SECRET` is set.

use super::env::Env;
use super::sections::web_url;
use crate::secret::Secret;

#[derive(Debug, Clone)]
pub struct PanelConfig {
    /// `PANEL_SECRET` (≥ 32 characters): signs the one-time login links.
    pub secret: Secret<String>,
    /// `PANEL_URL`: where admins open the panel (its links point there). Default:
    /// `PUBLIC_BASE_URL`, else the listener's own address.
    pub url: url::Url,
    /// `PANEL_SESSION_HOURS`: how long a login lasts.
    pub session_hours: u32,
}

impl PanelConfig {
    /// Cookies are `Secure` unless the panel is plain HTTP on a loopback address (development,
    /// the sandbox): a browser drops a Secure cookie set over plain HTTP elsewhere.
    pub fn secure_cookies(&self) -> bool {
        let loopback = match self.url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(name)) => name == "localhost",
            None => false,
        };
        !(self.url.scheme() == "http" && loopback)
    }

    /// `path` under the panel, e.g. `login?token=…`.
    pub fn link(&self, path: &str) -> String {
        format!("{}/panel/{path}", self.url.as_str().trim_end_matches('/'))
    }
}

pub(super) fn panel(
    env: &mut Env,
    public_base_url: Option<&url::Url>,
    listen_addr: std::net::SocketAddr,
) -> Option<PanelConfig> {
    let secret = env.optional("PANEL_SECRET", |raw: &str| {
        if raw.len() >= 32 {
            Ok(Secret::new(raw.to_owned()))
        } else {
            Err("at least 32 characters (`nanobanana webhook-secret` prints a fresh one)")
        }
    });
    let url = env.optional("PANEL_URL", web_url);
    let session_hours = env.number("PANEL_SESSION_HOURS", 12, 1..=720);
    let url = url.or_else(|| public_base_url.cloned()).or_else(|| {
        let host = if listen_addr.ip().is_unspecified() {
            "127.0.0.1".to_owned()
        } else {
            listen_addr.ip().to_string()
        };
        let host = if host.contains(':') { format!("[{host}]") } else { host };
        url::Url::parse(&format!("http://{host}:{}", listen_addr.port())).ok()
    })?;
    Some(PanelConfig { secret: secret?, url, session_hours })
}
