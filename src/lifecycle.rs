//! Signals and drain (docs/operations.md). Pingora stops accepting the moment it learns of a
//! shutdown; gatehouse stands between the signal and Pingora so that nothing is lost:
//!
//! - SIGTERM: drain. `/readyz` answers 503 at once and every response carries
//!   `Connection: close`, while the listeners keep accepting for `server.grace_period`; then
//!   Pingora stops accepting and in-flight requests get `server.graceful_shutdown_timeout`.
//! - SIGQUIT: upgrade. The same drain starts, and Pingora hands the listening sockets to the
//!   new process (`run -u`), which accepts from then on.
//! - SIGINT: stop at once.
//!
//! SIGHUP (reload) is caught from the first instant of `run` (`cli`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::{ShutdownSignal, ShutdownSignalWatch};
use tokio::signal::unix::{signal, SignalKind};

use crate::runtime::Shared;

pub struct Signals {
    pub shared: Arc<Shared>,
    /// How long the listeners keep accepting after SIGTERM.
    pub grace_period: Duration,
}

#[async_trait]
impl ShutdownSignalWatch for Signals {
    async fn recv(&self) -> ShutdownSignal {
        let (Ok(mut quit), Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::quit()),
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            log::error!("cannot install the SIGTERM / SIGQUIT / SIGINT handlers; stopping");
            return ShutdownSignal::FastShutdown;
        };
        tokio::select! {
            _ = quit.recv() => {
                self.shared.draining.store(true, Ordering::SeqCst);
                log::info!("SIGQUIT: draining; handing the listening sockets to the new process");
                ShutdownSignal::GracefulUpgrade
            }
            _ = term.recv() => {
                self.shared.draining.store(true, Ordering::SeqCst);
                log::info!(
                    "SIGTERM: draining; accepting for {:?} more, then finishing in-flight requests",
                    self.grace_period
                );
                // A second SIGTERM or a SIGINT cuts the grace period short.
                tokio::select! {
                    _ = tokio::time::sleep(self.grace_period) => {}
                    _ = term.recv() => {}
                    _ = int.recv() => return ShutdownSignal::FastShutdown,
                }
                ShutdownSignal::GracefulTerminate
            }
            _ = int.recv() => ShutdownSignal::FastShutdown,
        }
    }
}
