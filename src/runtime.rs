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
    /// Counters, caches and concurrency slots (built once; survives reloads).
    pub store: Arc<dyn crate::store::Store>,
    pub access_log: AccessLogTarget,
    pub config_path: PathBuf,
    pub generation: AtomicU64,
    pub ready: AtomicBool,
    /// Set at SIGTERM or SIGQUIT: `/readyz` answers 503 and every response closes its
    /// connection, so clients move to another instance (or the upgraded process).
    pub draining: AtomicBool,
    pub echo: bool,
    /// `config::start_only` of the configuration the process started with.
    pub start_only: Vec<(&'static str, String)>,
    /// Finished request traces (`Ocp-Apim-Trace`), served by the admin listener.
    pub traces: crate::observe::traces::TraceStore,
}

/// Stack of the thread a reload compiles on. Compilation recurses over policy documents and
/// expressions whose depth the parsers bound; this leaves a wide margin on any input.
const RELOAD_STACK: usize = 64 * 1024 * 1024;

impl Shared {
    pub fn new(
        gw: Gateway,
        access_log: AccessLogTarget,
        config_path: PathBuf,
        echo: bool,
        store: Arc<dyn crate::store::Store>,
        start_only: Vec<(&'static str, String)>,
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
            draining: AtomicBool::new(false),
            echo,
            start_only,
            traces: Default::default(),
        })
    }

    /// `reload` on a thread of its own with a large stack, so no input can take the serving
    /// process down; waits for it.
    pub fn reload_on_own_thread(self: &Arc<Self>) -> Result<u64, Diagnostics> {
        let shared = self.clone();
        let spawned = std::thread::Builder::new()
            .name("gatehouse-reload".into())
            .stack_size(RELOAD_STACK)
            .spawn(move || shared.reload());
        match spawned.map(|t| t.join()) {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => {
                log::error!("configuration reload failed (the reload thread panicked); keeping the running configuration");
                Err(Diagnostics::new())
            }
            Err(e) => {
                log::error!("configuration reload failed: cannot start its thread: {e}");
                Err(Diagnostics::new())
            }
        }
    }

    /// Load and compile the configuration again, off the request path, and swap it in.
    /// A failed reload keeps the running configuration. Listener, admin and server settings
    /// are read only at start (`config::start_only`): a change to them is warned about and
    /// needs a restart (or a `-u` upgrade).
    pub fn reload(&self) -> Result<u64, Diagnostics> {
        let result = config::load(&self.config_path).and_then(|c| {
            for ((section, now), (_, then)) in config::start_only(&c.raw).iter().zip(&self.start_only) {
                if now != then {
                    log::warn!(
                        "reload: `{section}` changed; it is read only at start and takes effect at the next restart or upgrade (-u)"
                    );
                }
            }
            gateway::compile(&c, &gateway::load::Sources::read(&c))
        });
        match result {
            Ok((mut gw, warnings)) => {
                for w in warnings.items() {
                    log::warn!("{w}");
                }
                crate::upstream::carry_over(&self.gateway.load().backends, &mut gw.backends);
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
