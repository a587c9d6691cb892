//! CIDR allowlists on keys: `203.0.113.0/24`, `2001:db8::/32`, or a bare address.

use crate::error::ApiError;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let bad = || {
            ApiError::validation(format!(
                "`{s}` is not a CIDR block such as 203.0.113.0/24 or 2001:db8::/32"
            ))
        };
        let (addr, bits) = match s.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let net: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            Some(b) => b.parse::<u8>().ok().filter(|b| *b <= max).ok_or_else(bad)?,
            None => max,
        };
        if bits == 0 {
            return Err(ApiError::validation(
                "a /0 block allows every address: leave the allowlist empty instead",
            ));
        }
        Ok(Self { net, bits })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 client seen through an IPv6 socket is matched as IPv4.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), self.bits),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), self.bits),
            _ => false,
        }
    }

    /// Whether every address of `other` is inside `self`.
    pub fn covers(&self, other: &Cidr) -> bool {
        other.bits >= self.bits && self.contains(other.net)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.net, self.bits)
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let (whole, rest) = ((bits / 8) as usize, bits % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    rest == 0 || (a[whole] ^ b[whole]) >> (8 - rest) == 0
}

/// Validates and normalises a list (at most 50 blocks).
pub fn parse_list(list: &[String]) -> Result<Vec<String>, ApiError> {
    if list.len() > 50 {
        return Err(ApiError::validation(
            "`cidr_allowlist` holds at most 50 blocks",
        ));
    }
    list.iter()
        .map(|s| Cidr::parse(s.trim()).map(|c| c.to_string()))
        .collect()
}

/// Whether `ip` may use a key with this allowlist (an empty list allows every address).
pub fn allows(list: &[String], ip: Option<IpAddr>) -> bool {
    if list.is_empty() {
        return true;
    }
    let Some(ip) = ip else { return false };
    list.iter()
        .filter_map(|s| Cidr::parse(s).ok())
        .any(|c| c.contains(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching() {
        let c = Cidr::parse("203.0.113.0/24").unwrap();
        assert!(c.contains("203.0.113.77".parse().unwrap()));
        assert!(!c.contains("203.0.114.1".parse().unwrap()));
        assert!(c.contains("::ffff:203.0.113.9".parse().unwrap()));
        let odd = Cidr::parse("10.0.0.0/9").unwrap();
        assert!(odd.contains("10.127.255.255".parse().unwrap()));
        assert!(!odd.contains("10.128.0.0".parse().unwrap()));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:1::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        assert!(
            Cidr::parse("127.0.0.1")
                .unwrap()
                .contains("127.0.0.1".parse().unwrap())
        );
        assert!(Cidr::parse("0.0.0.0/0").is_err());
        assert!(Cidr::parse("1.2.3.4/33").is_err());
        assert!(Cidr::parse("1.2.3/8").is_err());
        assert!(c.covers(&Cidr::parse("203.0.113.128/25").unwrap()));
        assert!(!c.covers(&Cidr::parse("203.0.0.0/16").unwrap()));
        assert!(allows(&[], None));
        assert!(!allows(&["127.0.0.1/32".into()], None));
    }
}
