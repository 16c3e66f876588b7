//! Subscriptions and keys: lookup through a keyed hash, then a constant-time comparison of the
//! key itself, so response timing says nothing about how much of a key was right.

use ahash::AHashMap;
use subtle::ConstantTimeEq;

use crate::config::SubscriptionState;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubScope {
    Product(usize),
    Api(usize),
    AllApis,
    AllAccess,
}

#[derive(Debug)]
pub struct Subscription {
    pub id: String,
    pub name: String,
    pub scope: SubScope,
    pub primary_key: Option<String>,
    pub secondary_key: Option<String>,
    /// Keys configured as `sha256:<hex>`: only their digests are known.
    pub primary_hash: Option<[u8; 32]>,
    pub secondary_hash: Option<[u8; 32]>,
    pub state: SubscriptionState,
    pub allow_tracing: bool,
    /// Start date in unix seconds (quota windows align to it).
    pub start: i64,
}

pub struct Subscriptions {
    pub list: Vec<Subscription>,
    by_key: AHashMap<u64, Vec<usize>>,
    by_digest: AHashMap<[u8; 32], Vec<usize>>,
    hasher: ahash::RandomState,
}

/// SHA-256 of a presented key.
pub fn digest(key: &str) -> [u8; 32] {
    openssl::sha::sha256(key.as_bytes())
}

/// `sha256:<64 hex digits>` → the digest.
pub fn parse_hashed(k: &str) -> Option<Result<[u8; 32], crate::diag::Invalid>> {
    let hex = k.strip_prefix("sha256:")?;
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
        })
        .collect();
    Some(match bytes {
        Some(b) if b.len() == 32 && hex.len() == 64 => {
            let mut out = [0u8; 32];
            out.copy_from_slice(&b);
            Ok(out)
        }
        _ => Err("a hashed key is `sha256:` followed by 64 hex digits".into()),
    })
}

impl Subscriptions {
    pub fn new(list: Vec<Subscription>) -> Subscriptions {
        let hasher = ahash::RandomState::new();
        let mut by_key: AHashMap<u64, Vec<usize>> = AHashMap::new();
        let mut by_digest: AHashMap<[u8; 32], Vec<usize>> = AHashMap::new();
        for (i, s) in list.iter().enumerate() {
            for d in [&s.primary_hash, &s.secondary_hash].into_iter().flatten() {
                by_digest.entry(*d).or_default().push(i);
            }
            for k in [&s.primary_key, &s.secondary_key].into_iter().flatten() {
                by_key
                    .entry(hasher.hash_one(k.as_bytes()))
                    .or_default()
                    .push(i);
            }
        }
        Subscriptions {
            list,
            by_key,
            by_digest,
            hasher,
        }
    }

    /// The subscription holding `key` as its primary or secondary key.
    pub fn find(&self, key: &str) -> Option<(usize, &Subscription)> {
        self.find_plain(key).or_else(|| self.find_hashed(key))
    }

    fn find_hashed(&self, key: &str) -> Option<(usize, &Subscription)> {
        if self.by_digest.is_empty() {
            return None;
        }
        let d = digest(key);
        for &i in self.by_digest.get(&d)? {
            let s = &self.list[i];
            let p = s.primary_hash.is_some_and(|h| bool::from(h.ct_eq(&d)));
            let q = s.secondary_hash.is_some_and(|h| bool::from(h.ct_eq(&d)));
            if p | q {
                return Some((i, s));
            }
        }
        None
    }

    fn find_plain(&self, key: &str) -> Option<(usize, &Subscription)> {
        let candidates = self.by_key.get(&self.hasher.hash_one(key.as_bytes()))?;
        for &i in candidates {
            let s = &self.list[i];
            let p = s
                .primary_key
                .as_deref()
                .is_some_and(|k| bool::from(k.as_bytes().ct_eq(key.as_bytes())));
            let q = s
                .secondary_key
                .as_deref()
                .is_some_and(|k| bool::from(k.as_bytes().ct_eq(key.as_bytes())));
            if p | q {
                return Some((i, s));
            }
        }
        None
    }
}
