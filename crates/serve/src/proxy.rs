//! Who the client is, when `dropkey serve` runs behind a load balancer or reverse proxy.
//!
//! The TCP peer is the client unless it is one of `[serve] trusted_proxies`. Only then is
//! `X-Forwarded-For` read, from the right (the hop nearest to us) leftwards, skipping trusted
//! proxies: the first address not in the list is the client. Anything a client writes to the
//! left of that cannot change the answer, and a client that is not a trusted proxy cannot move
//! its address at all, so the per-IP limit and the audit log name the real client.

use std::net::IpAddr;

use axum::http::HeaderMap;
use dropkey_core::serve_config::IpNet;

/// The client of a request, and the proxy it came through when that proxy is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    pub ip: IpAddr,
    /// The trusted proxy that forwarded the request; `None` for a direct connection.
    pub via: Option<IpAddr>,
}

/// The set of trusted proxies.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self { nets }
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(ip))
    }

    /// The client behind `peer`, the TCP peer of a request with `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> Client {
        let peer = peer.to_canonical();
        let direct = Client {
            ip: peer,
            via: None,
        };
        if !self.trusts(peer) {
            return direct;
        }
        // Every X-Forwarded-For header, in order, is one comma-separated list; each proxy
        // appends the address it saw, so the nearest hop is last.
        let mut hops: Vec<IpAddr> = Vec::new();
        for value in headers.get_all("x-forwarded-for") {
            let Ok(text) = value.to_str() else {
                return direct;
            };
            for hop in text.split(',') {
                match parse_hop(hop.trim()) {
                    Some(ip) => hops.push(ip.to_canonical()),
                    // A list we cannot read is no evidence: the proxy itself is the client.
                    None => return direct,
                }
            }
        }
        let Some(&leftmost) = hops.first() else {
            return direct;
        };
        let ip = hops
            .iter()
            .rev()
            .copied()
            .find(|ip| !self.trusts(*ip))
            .unwrap_or(leftmost);
        Client {
            ip,
            via: Some(peer),
        }
    }
}

/// One `X-Forwarded-For` entry: an IP, possibly with a port (`1.2.3.4:5678`, `[::1]:80`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = hop.parse::<std::net::SocketAddr>() {
        return Some(addr.ip());
    }
    hop.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .and_then(|h| h.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        headers
    }

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_peer() {
        let proxies = TrustedProxies::new(vec![
            IpNet::parse("10.0.0.0/8").unwrap(),
            IpNet::parse("127.0.0.1").unwrap(),
        ]);
        // Untrusted peer: its header is ignored.
        let c = proxies.client(ip("203.0.113.9"), &xff(&["1.2.3.4"]));
        assert_eq!(
            c,
            Client {
                ip: ip("203.0.113.9"),
                via: None
            }
        );
        // Trusted peer: the rightmost untrusted hop, whatever the client put on the left.
        let c = proxies.client(ip("10.0.0.2"), &xff(&["6.6.6.6, 198.51.100.4", "10.0.0.5"]));
        assert_eq!(c.ip, ip("198.51.100.4"));
        assert_eq!(c.via, Some(ip("10.0.0.2")));
        // Ports and brackets.
        let c = proxies.client(ip("127.0.0.1"), &xff(&["[2001:db8::5]:443"]));
        assert_eq!(c.ip, ip("2001:db8::5"));
        // Nothing usable: the peer is the client.
        for bad in [&["garbage"][..], &[][..], &["1.2.3.4, "][..]] {
            let c = proxies.client(ip("10.0.0.2"), &xff(bad));
            assert_eq!(
                c,
                Client {
                    ip: ip("10.0.0.2"),
                    via: None
                },
                "{bad:?}"
            );
        }
        // Every hop trusted: the leftmost is the best we know.
        let c = proxies.client(ip("10.0.0.2"), &xff(&["10.9.9.9"]));
        assert_eq!(c.ip, ip("10.9.9.9"));
    }
}
