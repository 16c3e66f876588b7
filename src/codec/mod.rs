//! Leaf codecs shared by every layer: the canonical request path, query strings and URL
//! components, XML entities, JSON Web Keys, byte-level replacement in bodies.

pub mod bytes;
pub mod entities;
pub mod jwk;
pub mod jwt_crypto;
pub mod path;
pub mod query;
pub mod trace_context;
