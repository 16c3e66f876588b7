//! The framework's floor for perf/run.sh: a bare Pingora reverse proxy to one upstream, built
//! with the same release profile as gatehouse (fat LTO, one codegen unit) and the same
//! allocator (jemalloc), so that the comparison measures gatehouse's own work.
//!   cargo run --release --example minimal_proxy -- 127.0.0.1:18006 127.0.0.1:18000
//! Optional third and fourth arguments: worker threads (1) and `steal` for Pingora's work
//! stealing (off by default), for perf/threads.py.
use async_trait::async_trait;
use pingora::prelude::*;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

struct Minimal(String);

#[async_trait]
impl ProxyHttp for Minimal {
    type CTX = ();
    fn new_ctx(&self) {}
    async fn upstream_peer(&self, _s: &mut Session, _c: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(
            self.0.as_str(),
            false,
            String::new(),
        )))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (listen, upstream) = match (args.get(1), args.get(2)) {
        (Some(l), Some(u)) => (l.clone(), u.clone()),
        _ => ("127.0.0.1:18006".to_string(), "127.0.0.1:18000".to_string()),
    };
    let threads = args.get(3).and_then(|t| t.parse().ok()).unwrap_or(1);
    let conf = pingora::server::configuration::ServerConf {
        threads,
        work_stealing: args.get(4).is_some_and(|s| s == "steal"),
        ..Default::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut svc = http_proxy_service(&server.configuration, Minimal(upstream));
    svc.add_tcp(&listen);
    server.add_service(svc);
    server.run_forever();
}
