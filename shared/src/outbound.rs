//! Calls Portcullis makes on a caller's behalf (proxy mode), with a credential attached: only
//! to public addresses. The destination is checked after DNS resolution, and the client's own
//! resolver applies the same check to every address it connects to, so a name that resolves
//! differently the second time (DNS rebinding) cannot reach an internal address either.
//! Redirects are never followed: the caller gets the 3xx and decides.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The whole upstream exchange, connect included (under API Gateway's 29 s).
pub const TIMEOUT: Duration = Duration::from_secs(25);
/// Response bodies past this are cut (`body_truncated`): the answer must fit a Lambda reply.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// Addresses no credential may be sent to: this machine, private networks, link-local (cloud
/// metadata at 169.254.169.254 and fd00:ec2::254 included), and the reserved ranges.
pub fn blocked(ip: IpAddr) -> bool {
    if ip.is_loopback() && crate::service::validate::loopback_allowed() {
        return false;
    }
    match ip {
        IpAddr::V4(v4) => blocked_v4(v4),
        IpAddr::V6(v6) => blocked_v6(v6),
    }
}

fn blocked_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (b & 0xc0) == 64) // shared address space (carrier NAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b & 0xfe) == 18) // benchmarking
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast (deprecated)
        || a >= 240 // reserved
}

fn blocked_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from(((hi as u32) << 16) | lo as u32);
    // Forms that carry an IPv4 address are judged by that address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return blocked_v4(v4);
    }
    if s[..6] == [0; 6] && !ip.is_loopback() && !ip.is_unspecified() {
        return blocked_v4(embedded(s[6], s[7])); // IPv4-compatible (deprecated)
    }
    if s[..4] == [0; 4] && s[4] == 0xffff && s[5] == 0 {
        return blocked_v4(embedded(s[6], s[7])); // IPv4-translated
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        return true; // local-use NAT64: whatever it maps to is local
    }
    if s[0] == 0x64 && s[1] == 0xff9b {
        return blocked_v4(embedded(s[6], s[7])); // NAT64
    }
    if s[0] == 0x2002 {
        return blocked_v4(embedded(s[1], s[2])); // 6to4
    }
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2001 && s[1] < 0x0200) // IETF protocol assignments (Teredo, ORCHID, …)
}

/// Why a destination was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// It is, or resolves to, an address in a blocked range.
    Internal,
    /// The name does not resolve.
    Unresolvable,
}

/// Checks where `host` (a name or an IP literal) leads: every address it resolves to must be
/// public. The client re-checks on connect (see `Guard`).
pub async fn check(host: &str, port: u16) -> Result<(), Refusal> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return if blocked(ip) {
            Err(Refusal::Internal)
        } else {
            Ok(())
        };
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|_| Refusal::Unresolvable)?
        .collect();
    if addrs.is_empty() {
        return Err(Refusal::Unresolvable);
    }
    if addrs.iter().any(|a| blocked(a.ip())) {
        return Err(Refusal::Internal);
    }
    Ok(())
}

/// The client's resolver: answers only public addresses, so a connection can never be made to
/// an internal one whatever DNS says at connect time.
struct Guard;

impl reqwest::dns::Resolve for Guard {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if all.iter().any(|a| blocked(a.ip())) {
                return Err("the destination resolves to an internal address".into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(all.into_iter());
            Ok(addrs)
        })
    }
}

/// The one client for upstream calls (pooled per instance).
pub fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(Guard))
            .no_proxy()
            .build()
            .expect("the upstream HTTP client builds")
    })
}

/// A response body, read up to `cap` bytes: the bytes and whether more were left unread.
pub async fn read_truncating(mut response: reqwest::Response, cap: usize) -> (Vec<u8>, bool) {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = cap - body.len();
                if chunk.len() > room {
                    body.extend_from_slice(&chunk[..room]);
                    return (body, true);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) | Err(_) => return (body, false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_blocked_in_every_spelling() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "192.0.0.170",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "::1",
            "::",
            "fd00:ec2::254",
            "fc00::1",
            "fe80::1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:a9fe:a9fe::1",
            "2001:db8::1",
            "ff02::1",
            "::ffff:0:a00:1",
            "64:ff9b:1::808:808",
            "192.88.99.1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            let v = match ip {
                IpAddr::V4(v4) => blocked_v4(v4),
                IpAddr::V6(v6) => blocked_v6(v6),
            };
            assert!(v, "{ip} is not blocked");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            let v = match ip {
                IpAddr::V4(v4) => blocked_v4(v4),
                IpAddr::V6(v6) => blocked_v6(v6),
            };
            assert!(!v, "{ip} is blocked");
        }
    }
}
