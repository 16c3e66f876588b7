//! Signals and drain (docs/operations.md). Pingora stops accepting the moment it learns of a
//! shutdown; gatehouse stands between the signal and Pingora so that nothing is lost:
//!
//! - SIGTERM: drain. `/readyz` answers 503 at once and every response carries
//!   `Connection: close`, while the listeners keep accepting for `server.grace_period`; then
//!   Pingora stops accepting and in-flight requests get `server.graceful_shutdown_timeout`.
//! - SIGQUIT: upgrade. The same drain starts, and Pingora hands the listening sockets to the
//!   new process (`run -u`), which accepts from then on.
//! - SIGUSR2: upgrade to the binary now installed at the path this process was started from,
//!   for supervisors that own the process (systemd): the new binary checks the configuration,
//!   is started with `run -u` as a child, and once it waits for the sockets this process hands
//!   them over as on SIGQUIT. A new binary that refuses the configuration or does not come up
//!   leaves this process serving. The new process sends `MAINPID=` and `READY=1` (`systemd`).
//! - SIGINT: stop at once.
//!
//! SIGHUP (reload) is caught from the first instant of `run` (`cli`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
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
    /// `server.upgrade_sock`: where the new process waits for the sockets.
    pub upgrade_sock: PathBuf,
}

/// How long a new binary has to load its configuration and wait for the sockets.
const UPGRADE_START_LIMIT: Duration = Duration::from_secs(60);

#[async_trait]
impl ShutdownSignalWatch for Signals {
    async fn recv(&self) -> ShutdownSignal {
        let (Ok(mut quit), Ok(mut term), Ok(mut int), Ok(mut usr2)) = (
            signal(SignalKind::quit()),
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::user_defined2()),
        ) else {
            log::error!(
                "cannot install the SIGTERM / SIGQUIT / SIGINT / SIGUSR2 handlers; stopping"
            );
            return ShutdownSignal::FastShutdown;
        };
        loop {
            tokio::select! {
                _ = quit.recv() => {
                    self.shared.draining.store(true, Ordering::SeqCst);
                    log::info!("SIGQUIT: draining; handing the listening sockets to the new process");
                    crate::systemd::upgrading();
                    return ShutdownSignal::GracefulUpgrade;
                }
                _ = usr2.recv() => {
                    log::info!("SIGUSR2: upgrading to the installed binary");
                    match start_upgrade(&self.shared.config_path, &self.upgrade_sock).await {
                        Ok(pid) => {
                            self.shared.draining.store(true, Ordering::SeqCst);
                            log::info!("SIGUSR2: process {pid} waits for the sockets; draining and handing them over");
                            crate::systemd::upgrading();
                            return ShutdownSignal::GracefulUpgrade;
                        }
                        Err(e) => log::error!("upgrade abandoned; this process keeps serving: {e}"),
                    }
                }
                _ = term.recv() => {
                    self.shared.draining.store(true, Ordering::SeqCst);
                    crate::systemd::stopping("stopping: draining (SIGTERM)");
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
                    return ShutdownSignal::GracefulTerminate;
                }
                _ = int.recv() => {
                    crate::systemd::stopping("stopping (SIGINT)");
                    return ShutdownSignal::FastShutdown;
                }
            }
        }
    }
}

/// The binary to upgrade to: the path this process was started from (`argv[0]`), which an
/// installation replaces; `/proc/self/exe` would name the old, possibly deleted, file.
fn installed_binary() -> PathBuf {
    let argv0 = std::env::args_os().next().map(PathBuf::from);
    match argv0 {
        Some(p) if p.components().count() > 1 => p,
        _ => std::env::current_exe().unwrap_or_else(|_| PathBuf::from("gatehouse")),
    }
}

/// This process's arguments with `-u` added to `run` (and `-d` dropped: the new process stays
/// in the supervisor's view, as this one is).
fn upgrade_args() -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os()
        .skip(1)
        .filter(|a| a != "-d" && a != "--daemon")
        .collect();
    if !args.iter().any(|a| a == "-u" || a == "--upgrade") {
        let at = args.iter().position(|a| a == "run").map_or(0, |i| i + 1);
        args.insert(at, "-u".into());
    }
    args
}

/// Start the installed binary as the new process: its `check` must pass on the configuration,
/// then it runs with `-u` until it listens on the upgrade socket. Returns its PID.
async fn start_upgrade(config: &Path, upgrade_sock: &Path) -> Result<u32, String> {
    let binary = installed_binary();
    let check = tokio::process::Command::new(&binary)
        .arg("check")
        .arg("-c")
        .arg(config)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    if !check.status.success() {
        return Err(format!(
            "{} check refuses the configuration:\n{}",
            binary.display(),
            String::from_utf8_lossy(&check.stderr).trim_end()
        ));
    }
    let before = socket_id(upgrade_sock);
    let mut child = tokio::process::Command::new(&binary)
        .args(upgrade_args())
        // The new process becomes the service's main process: the watchdog is its to serve.
        .env_remove("WATCHDOG_PID")
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let pid = child.id().unwrap_or(0);
    let start = tokio::time::Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "the new process {pid} exited before it took the sockets ({status})"
            ));
        }
        let now = socket_id(upgrade_sock);
        if now.is_some() && now != before {
            // Reap the new process should it end while this one still drains.
            tokio::spawn(async move {
                let _ = child.wait().await;
            });
            return Ok(pid);
        }
        if start.elapsed() > UPGRADE_START_LIMIT {
            let _ = child.kill().await;
            return Err(format!(
                "the new process {pid} did not open {} within {UPGRADE_START_LIMIT:?}",
                upgrade_sock.display()
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Identity (device, inode) of the upgrade socket file, which the new process creates afresh.
fn socket_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}
