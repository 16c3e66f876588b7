//! One module per built-in policy, named after its XML element.

pub mod access;
pub mod cache;
pub mod cache_value;
pub mod choose;
pub mod cors;
pub mod find_and_replace;
pub mod forward_request;
pub mod jwt;
pub mod limit_concurrency;
pub mod mock_response;
pub mod quota;
pub mod rate_limit;
pub mod retry;
pub mod return_response;
pub mod rewrite_uri;
pub mod send_request;
pub mod set_backend_service;
pub mod set_body;
pub mod set_header;
pub mod set_method;
pub mod set_query_parameter;
pub mod set_status;
pub mod set_variable;
pub mod trace;
pub mod wait;
