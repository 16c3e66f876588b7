//! Leaf codecs shared by every layer: the canonical request path.

pub mod path;
