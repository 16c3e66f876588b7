//! State shared by every service of one process: the gateway snapshot behind an `ArcSwap`
//! (each request takes one snapshot and keeps it), and the reload path.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::{self, AccessLogTarget};
use crate::diag::Diagnostics;
use crate::gateway::{self, Gateway};
use crate::observe::metrics;

pub struct Shared {
    pub gateway: ArcSwap<Gateway>,
    /// Rate-limit and quota counters (built once; survives reloads).
    pub store: Arc<dyn crate::store::Counters>,
    pub access_log: AccessLogTarget,
    pub config_path: PathBuf,
    pub generation: AtomicU64,
    pub ready: AtomicBool,
    pub echo: bool,
}

impl Shared {
    pub fn new(
        gw: Gateway,
        access_log: AccessLogTarget,
        config_path: PathBuf,
        echo: bool,
        store: Arc<dyn crate::store::Counters>,
    ) -> Arc<Shared> {
        if let Some(m) = metrics::get() {
            m.generation.set(1);
        }
        Arc::new(Shared {
            gateway: ArcSwap::from_pointee(gw),
            store,
            access_log,
            config_path,
            generation: AtomicU64::new(1),
            ready: AtomicBool::new(false),
            echo,
        })
    }

    /// Load and compile the configuration again, off the request path, and swap it in.
    /// A failed reload keeps the running configuration. Listener, admin and server settings
    /// are read only at start; changing them needs a restart (or a `-u` upgrade).
    pub fn reload(&self) -> Result<u64, Diagnostics> {
        let result = config::load(&self.config_path).and_then(|c| gateway::compile(&c));
        match result {
            Ok((mut gw, warnings)) => {
                for w in warnings.items() {
                    log::warn!("{w}");
                }
                crate::upstream::carry_over(&self.gateway.load(), &mut gw);
                self.gateway.store(Arc::new(gw));
                let g = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
                if let Some(m) = metrics::get() {
                    m.reloads.with_label_values(&["ok"]).inc();
                    m.generation.set(g as i64);
                }
                log::info!("configuration reloaded: generation {g}");
                Ok(g)
            }
            Err(d) => {
                if let Some(m) = metrics::get() {
                    m.reloads.with_label_values(&["error"]).inc();
                }
                log::error!(
                    "configuration reload failed; keeping generation {}:\n{}",
                    self.generation.load(Ordering::SeqCst),
                    d.render_text()
                );
                Err(d)
            }
        }
    }
}
