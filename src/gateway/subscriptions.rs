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
    pub state: SubscriptionState,
    pub allow_tracing: bool,
    /// Start date in unix seconds (quota windows align to it).
    pub start: i64,
}

pub struct Subscriptions {
    pub list: Vec<Subscription>,
    by_key: AHashMap<u64, Vec<usize>>,
    hasher: ahash::RandomState,
}

impl Subscriptions {
    pub fn new(list: Vec<Subscription>) -> Subscriptions {
        let hasher = ahash::RandomState::new();
        let mut by_key: AHashMap<u64, Vec<usize>> = AHashMap::new();
        for (i, s) in list.iter().enumerate() {
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
            hasher,
        }
    }

    /// The subscription holding `key` as its primary or secondary key.
    pub fn find(&self, key: &str) -> Option<(usize, &Subscription)> {
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
