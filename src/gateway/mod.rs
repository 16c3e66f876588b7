//! Loading and compiling: configuration and policy files become the immutable
//! `exec::model::Gateway` snapshot the engine runs (`compile`), and `explain` shows it.

pub mod compile;
pub mod explain;
pub mod load;

pub use crate::exec::model::*;
pub use crate::exec::route::UrlTemplate;
pub use crate::exec::subscriptions::{SubScope, Subscription, Subscriptions};
pub use crate::net::url::BaseUrl;
pub use crate::upstream::Backend;
pub use compile::compile;
