//! Observability: Prometheus metrics and the structured (JSON) access log.

pub mod access_log;
pub mod logging;
pub mod metrics;
pub mod otlp;
pub mod traces;
