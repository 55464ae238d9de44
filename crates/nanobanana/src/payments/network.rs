//! Who sent a notification (DESIGN §9: YooKassa signs nothing, so the network is the first
//! check). The peer address is the truth; `X-Forwarded-For` is believed only when the peer is
//! one of our own reverse proxies, and then only up to the first hop that is not one of them.

use std::net::IpAddr;

use ipnet::IpNet;

/// The address a request really came from.
pub fn client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted_proxies: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    if !contains(trusted_proxies, peer) {
        return peer;
    }
    let Some(header) = forwarded_for else {
        return peer;
    };
    let mut client = peer;
    // Right to left: each hop was appended by the proxy after it.
    for hop in header.rsplit(',') {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
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
    fn networks_match_v4_and_v6() {
        let yk = nets(&["185.71.76.0/27", "77.75.156.11/32", "2a02:5180::/32"]);
        assert!(contains(&yk, ip("185.71.76.31")));
        assert!(!contains(&yk, ip("185.71.76.32")));
        assert!(contains(&yk, ip("2a02:5180::1")));
        assert!(contains(&yk, ip("::ffff:77.75.156.11")));
        assert!(!contains(&yk, ip("127.0.0.1")));
    }
}
