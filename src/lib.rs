//! gatehouse: a self-hosted API gateway that runs Azure-API-Management-style XML policies on
//! Cloudflare Pingora.

pub mod admin;
pub mod cli;
pub mod codec;
pub mod config;
pub mod diag;
pub mod exec;
pub mod expr;
pub mod gateway;
pub mod lifecycle;
pub mod net;
pub mod observe;
pub mod policy;
pub mod proxy;
pub mod runtime;
pub mod store;
pub mod systemd;
pub mod upstream;
