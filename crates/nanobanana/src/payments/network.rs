//! Who sent a notification (DESIGN §9: YooKassa signs nothing, so the network is the first
//! check). The peer address is the truth; `X-Forwarded-For` is believed only when the peer is
//! one of our own reverse proxies, and then only up to the first hop that is not one of them.

use std::net::IpAddr;

use ipnet::IpNet;

/// The address a request really came from. `forwarded_for` holds every `X-Forwarded-For`
/// line in the order received: a proxy may append a line of its own rather than extend the
/// last one, so they are read as one list, joined with commas.
pub fn client_ip<'a>(
    peer: IpAddr,
    forwarded_for: impl IntoIterator<Item = &'a str>,
    trusted_proxies: &[IpNet],
) -> IpAddr {
    let peer = peer.to_canonical();
    if !contains(trusted_proxies, peer) {
        return peer;
    }
    let header = forwarded_for.into_iter().collect::<Vec<_>>().join(",");
    let mut client = peer;
    // Right to left: each hop was appended by the proxy after it.
    for hop in header.rsplit(',').map(str::trim).filter(|hop| !hop.is_empty()) {
        let Some(ip) = hop_address(hop) else {
            // An unreadable hop: stop believing the header here.
            return client;
        };
        client = ip.to_canonical();
        if !contains(trusted_proxies, client) {
            return client;
        }
    }
    client
}

/// One hop: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]` or `[2001:db8::1]:5678`.
fn hop_address(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(address) = hop.parse::<std::net::SocketAddr>() {
        return Some(address.ip());
    }
    hop.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')).and_then(|ip| ip.parse().ok())
}

/// Every value of the `X-Forwarded-For` header, in order; values that are not text are skipped.
pub fn forwarded_for(headers: &axum::http::HeaderMap) -> Vec<&str> {
    headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect()
}

pub fn contains(networks: &[IpNet], ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    networks.iter().any(|net| net.contains(&ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().expect("net")).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        let proxies = nets(&["10.0.0.0/8"]);
        let yk = Some("185.71.76.5");
        let client_ip = |peer, header: Option<&str>, proxies: &[IpNet]| client_ip(peer, header, proxies);
        assert_eq!(client_ip(ip("203.0.113.9"), yk, &proxies), ip("203.0.113.9"), "spoofed header");
        assert_eq!(client_ip(ip("10.0.0.2"), yk, &proxies), ip("185.71.76.5"));
        // The client may prepend anything; only the hop our proxy appended counts.
        assert_eq!(client_ip(ip("10.0.0.2"), Some("185.71.76.5, 203.0.113.9"), &proxies), ip("203.0.113.9"));
        assert_eq!(client_ip(ip("10.0.0.2"), Some("203.0.113.9, 10.0.0.7"), &proxies), ip("203.0.113.9"));
        assert_eq!(client_ip(ip("10.0.0.2"), Some("junk"), &proxies), ip("10.0.0.2"));
        assert_eq!(client_ip(ip("10.0.0.2"), None, &proxies), ip("10.0.0.2"));
        assert_eq!(client_ip(ip("::ffff:185.71.76.5"), None, &[]), ip("185.71.76.5"));
    }

    #[test]
    fn every_line_is_read_right_to_left_and_ports_are_accepted() {
        let proxies = nets(&["10.0.0.0/8"]);
        // A proxy that appends a line of its own: the client's line must not win.
        let lines = ["185.71.76.5", "203.0.113.9"];
        assert_eq!(client_ip(ip("10.0.0.2"), lines, &proxies), ip("203.0.113.9"));
        let lines = ["185.71.76.5", "203.0.113.9, 10.0.0.3"];
        assert_eq!(client_ip(ip("10.0.0.2"), lines, &proxies), ip("203.0.113.9"));
        assert_eq!(client_ip(ip("10.0.0.2"), ["185.71.76.5:4711"], &proxies), ip("185.71.76.5"));
        assert_eq!(client_ip(ip("10.0.0.2"), ["[2a02:5180::1]:443"], &proxies), ip("2a02:5180::1"));
        assert_eq!(client_ip(ip("10.0.0.2"), ["[2a02:5180::1]"], &proxies), ip("2a02:5180::1"));
        assert_eq!(client_ip(ip("10.0.0.2"), ["2a02:5180::1"], &proxies), ip("2a02:5180::1"));
        let mut headers = axum::http::HeaderMap::new();
        headers.append("x-forwarded-for", "185.71.76.5".parse().expect("value"));
        headers.append("x-forwarded-for", "203.0.113.9:1234".parse().expect("value"));
        assert_eq!(client_ip(ip("10.0.0.2"), forwarded_for(&headers), &proxies), ip("203.0.113.9"));
    }

    #[test]
    fn networks_match_v4_and_v6() {
        let yk = nets(&["185.71.76.0/27", "77.75.156.11/32", "2a02:5180::/32"]);
        assert!(contains(&yk, ip("185.71.76.31")));
        assert!(!contains(&yk, ip("185.71.76.32")));
        assert!(contains(&yk, ip("2a02:5180::1")));
        assert!(contains(&yk, ip("::ffff:77.75.156.11")));
        assert!(!contains(&yk, ip("127.0.0.1")));
    }
}
