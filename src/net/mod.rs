//! Leaf network types: backend base URLs, CIDR ranges, forward proxies, TLS identities.

pub mod cidr;
pub mod proxy;
pub mod url;
