//! `HeaderStore` for Pingora's request and response headers (keeping their case maps in sync).

use http::{HeaderName, HeaderValue};
use pingora::http::{RequestHeader, ResponseHeader};

use crate::exec::HeaderStore;

macro_rules! header_store {
    ($t:ty) => {
        impl HeaderStore for $t {
            fn get_all(&self, name: &HeaderName) -> Vec<HeaderValue> {
                self.headers.get_all(name).iter().cloned().collect()
            }

            fn contains(&self, name: &HeaderName) -> bool {
                self.headers.contains_key(name)
            }

            fn set(&mut self, name: &HeaderName, values: &[HeaderValue]) {
                self.remove_header(name);
                for v in values {
                    // Only fails on invalid values, which `HeaderValue` already rules out.
                    let _ = self.append_header(name.clone(), v.clone());
                }
            }

            fn append(&mut self, name: &HeaderName, value: HeaderValue) {
                let _ = self.append_header(name.clone(), value);
            }

            fn remove(&mut self, name: &HeaderName) {
                self.remove_header(name);
            }

            fn each_value(&self, name: &str, f: &mut dyn FnMut(&[u8])) {
                for v in self.headers.get_all(name) {
                    f(v.as_bytes());
                }
            }

            fn names(&self) -> Vec<String> {
                self.headers
                    .keys()
                    .map(|k| k.as_str().to_string())
                    .collect()
            }

            fn clear(&mut self) {
                let names: Vec<HeaderName> = self.headers.keys().cloned().collect();
                for n in names {
                    self.remove_header(&n);
                }
            }
        }
    };
}

header_store!(RequestHeader);
header_store!(ResponseHeader);
