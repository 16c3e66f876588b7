//! Header access for the engine. The proxy implements it for Pingora's request and response
//! headers; `http::HeaderMap` implements it for gateway-built responses and tests.

use http::{HeaderMap, HeaderName, HeaderValue};

pub trait HeaderStore {
    fn get_all(&self, name: &HeaderName) -> Vec<HeaderValue>;
    fn contains(&self, name: &HeaderName) -> bool;
    /// Replace every value of `name` with `values` (each on its own line).
    fn set(&mut self, name: &HeaderName, values: &[HeaderValue]);
    fn append(&mut self, name: &HeaderName, value: HeaderValue);
    fn remove(&mut self, name: &HeaderName);
    /// Remove every header.
    fn clear(&mut self);
    /// Header names present (lower case, each once).
    fn names(&self) -> Vec<String>;
    /// Call `f` with each value of `name` (case-insensitive), without allocating.
    fn each_value(&self, name: &str, f: &mut dyn FnMut(&[u8]));
}

impl HeaderStore for HeaderMap {
    fn get_all(&self, name: &HeaderName) -> Vec<HeaderValue> {
        HeaderMap::get_all(self, name).iter().cloned().collect()
    }

    fn contains(&self, name: &HeaderName) -> bool {
        self.contains_key(name)
    }

    fn set(&mut self, name: &HeaderName, values: &[HeaderValue]) {
        self.remove(name);
        for v in values {
            HeaderMap::append(self, name.clone(), v.clone());
        }
    }

    fn append(&mut self, name: &HeaderName, value: HeaderValue) {
        HeaderMap::append(self, name.clone(), value);
    }

    fn remove(&mut self, name: &HeaderName) {
        HeaderMap::remove(self, name);
    }

    fn clear(&mut self) {
        HeaderMap::clear(self);
    }

    fn names(&self) -> Vec<String> {
        self.keys().map(|k| k.as_str().to_string()).collect()
    }

    fn each_value(&self, name: &str, f: &mut dyn FnMut(&[u8])) {
        for v in HeaderMap::get_all(self, name) {
            f(v.as_bytes());
        }
    }
}
