//! The service manager's side of the process (docs/operations.md, "systemd"): readiness,
//! reload and stop notifications (sd_notify(3), through the `sd-notify` crate), the watchdog,
//! and the check that the listeners are bound before `READY=1` is sent.
//!
//! Every notification is a no-op when `NOTIFY_SOCKET` is unset, so the same binary runs
//! under any supervisor. `READY=1` carries `MAINPID=` with the sender's own PID: after a
//! binary upgrade (`lifecycle`, SIGUSR2) the new process tells a `Type=notify` unit that it is
//! now the main process (the units set `NotifyAccess=all` for that).

use std::collections::HashSet;
use std::time::Duration;

use sd_notify::NotifyState;

fn send(states: &[NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(false, states) {
        log::warn!("cannot notify the service manager: {e}");
    }
}

fn status(generation: u64) -> String {
    format!("serving configuration generation {generation}")
}

/// Start-up is complete: the listeners are bound and the configuration compiled.
pub fn ready(generation: u64) {
    send(&[
        NotifyState::MainPid(std::process::id()),
        NotifyState::Status(&status(generation)),
        NotifyState::Ready,
    ]);
}

/// A reload begins (SIGHUP). systemd 253 and later require `MONOTONIC_USEC` with it.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(e) => log::warn!("cannot read the monotonic clock for RELOADING=1: {e}"),
    }
}

/// A reload ended: `generation` serves (the new one, or the old one after a failed reload).
pub fn reloaded(generation: u64, failed: bool) {
    let text = if failed {
        format!("{}; the last reload failed", status(generation))
    } else {
        status(generation)
    };
    send(&[NotifyState::Status(&text), NotifyState::Ready]);
}

/// The process stops (SIGTERM, SIGINT); not sent on an upgrade, where the service goes on.
pub fn stopping(why: &str) {
    send(&[NotifyState::Status(why), NotifyState::Stopping]);
}

/// Upgrade in progress: the old process says so before it hands over.
pub fn upgrading() {
    send(&[NotifyState::Status(
        "upgrading: handing the listening sockets to a new process",
    )]);
}

/// The interval to send `WATCHDOG=1` at (half of `WatchdogSec`), when the unit sets one.
/// As sd_watchdog_enabled(3): `WATCHDOG_USEC` set, and `WATCHDOG_PID` this process or unset
/// (the upgrade's new process is started without it; the crate's own check requires it).
pub fn watchdog_interval() -> Option<Duration> {
    std::env::var_os("NOTIFY_SOCKET")?;
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    match std::env::var("WATCHDOG_PID") {
        Ok(pid) if pid.parse::<u32>().ok() != Some(std::process::id()) => return None,
        _ => {}
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2).max(Duration::from_millis(100)))
}

pub fn watchdog() {
    send(&[NotifyState::Watchdog]);
}

/// Wait (at most `limit`) until this process holds a listening TCP socket on every port of
/// `addresses` (`host:port`). Pingora binds its listeners inside each service's runtime, after
/// `run` returns to it; reading `/proc` tells without connecting (a probe connection would
/// count against a listener and fail a TLS handshake). Returns the ports still missing.
pub async fn listeners_bound(addresses: &[&str], limit: Duration) -> Vec<u16> {
    let wanted: Vec<u16> = addresses
        .iter()
        .filter_map(|a| a.rsplit_once(':').and_then(|(_, p)| p.parse().ok()))
        .collect();
    let start = tokio::time::Instant::now();
    loop {
        let bound = listening_ports();
        let missing: Vec<u16> = wanted
            .iter()
            .copied()
            .filter(|p| !bound.contains(p))
            .collect();
        if missing.is_empty() || start.elapsed() >= limit {
            return missing;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Local ports of the TCP sockets in LISTEN state that this process holds (Linux `/proc`).
pub fn listening_ports() -> HashSet<u16> {
    let mut inodes = HashSet::new();
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        for e in dir.flatten() {
            if let Ok(target) = std::fs::read_link(e.path()) {
                let t = target.to_string_lossy();
                if let Some(n) = t.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                    inodes.insert(n.to_string());
                }
            }
        }
    }
    let mut ports = HashSet::new();
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state), Some(inode)) = (f.get(1), f.get(3), f.get(9)) else {
                continue;
            };
            if *state != "0A" || !inodes.contains(*inode) {
                continue;
            }
            if let Some(port) = local
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
            {
                ports.insert(port);
            }
        }
    }
    ports
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_listener_is_seen_and_a_connected_socket_is_not() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
        let c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| panic!("{e}"));
        let client_port = c.local_addr().map(|a| a.port()).unwrap_or(0);
        let ports = listening_ports();
        assert!(ports.contains(&port), "{ports:?} lacks {port}");
        assert!(!ports.contains(&client_port));
        drop(l);
        assert!(!listening_ports().contains(&port));
    }
}
