//! forward-request's timeout as one deadline for the response headers on the streaming path.
//!
//! Pingora's timeouts bound each connect, write and read separately: a slow connect followed by
//! a slow answer, or a backend that trickles its header a byte at a time, could take longer than
//! the configured timeout. When a timeout is configured (on `forward-request` or the backend), a
//! timer started with the forward shuts the upstream socket down at the deadline unless the
//! response headers arrived first; Pingora's pending read or write then fails and the failure
//! carries the Reason `Timeout`.
//!
//! The timer only ever shuts down the socket it was armed for: the watch is disarmed when the
//! headers arrive and when the request ends, and before shutting down, the timer checks that the
//! descriptor still names the same connection (local and peer address), so a descriptor that
//! was closed and reused in between is left alone.

use std::net::SocketAddr;
use std::os::unix::io::RawFd;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use pingora::protocols::l4::socket::SocketAddr as PingoraAddr;

/// The armed deadline of one forward over one upstream connection.
pub struct Watch {
    state: Arc<Mutex<State>>,
    timer: tokio::task::JoinHandle<()>,
}

struct State {
    armed: bool,
    fired: bool,
}

/// The connection the watch may shut down: its descriptor and its two addresses.
struct Conn {
    fd: RawFd,
    local: SocketAddr,
    peer: SocketAddr,
}

impl Conn {
    fn still_open(&self) -> bool {
        let inet =
            |peer| PingoraAddr::from_raw_fd(self.fd, peer).and_then(|a| a.as_inet().copied());
        inet(false) == Some(self.local) && inet(true) == Some(self.peer)
    }
}

impl Watch {
    /// Arm a deadline over the connection `fd` (whose addresses Pingora's digest gives).
    /// `None` when the connection's addresses are unknown: the per-IO timeouts then apply.
    pub fn arm(
        fd: RawFd,
        local: Option<&PingoraAddr>,
        peer: Option<&PingoraAddr>,
        deadline: Instant,
    ) -> Option<Watch> {
        let conn = Conn {
            fd,
            local: *local?.as_inet()?,
            peer: *peer?.as_inet()?,
        };
        let state = Arc::new(Mutex::new(State {
            armed: true,
            fired: false,
        }));
        let shared = state.clone();
        let timer = tokio::spawn(async move {
            tokio::time::sleep_until(deadline.into()).await;
            let mut s = shared.lock().unwrap_or_else(PoisonError::into_inner);
            if s.armed && conn.still_open() {
                s.fired = true;
                s.armed = false;
                let _ = nix::sys::socket::shutdown(conn.fd, nix::sys::socket::Shutdown::Both);
            }
        });
        Some(Watch { state, timer })
    }

    /// Stop the watch (the headers arrived, or the attempt ended). True when the deadline had
    /// already shut the connection down.
    pub fn disarm(&self) -> bool {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.armed = false;
        self.timer.abort();
        s.fired
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.disarm();
    }
}
