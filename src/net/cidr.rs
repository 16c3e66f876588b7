//! CIDR ranges: parsing `10.0.0.0/8` and testing membership.

use crate::diag::Invalid;

/// Whether `ip` is inside `net/len` (same family; IPv4-mapped IPv6 counts as IPv4).
pub fn contains(net: std::net::IpAddr, len: u8, ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match (net, ip.to_canonical()) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let mask = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len.min(32)))
            };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len.min(128)))
            };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

/// `10.0.0.0/8`, `::1`, `2001:db8::/32`.
pub fn parse(s: &str) -> Result<(std::net::IpAddr, u8), Invalid> {
    let (addr, len) = match s.trim().split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s.trim(), None),
    };
    let ip: std::net::IpAddr = addr
        .parse()
        .map_err(|_| crate::invalid!("{s:?} is not an IP address or CIDR range"))?;
    let ip = ip.to_canonical();
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match len {
        Some(l) => l
            .parse::<u8>()
            .ok()
            .filter(|l| *l <= max)
            .ok_or_else(|| crate::invalid!("{s:?}: prefix length must be 0 to {max}"))?,
        None => max,
    };
    Ok((ip, len))
}
