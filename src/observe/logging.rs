//! The process log (`RUST_LOG`, default `warn,gatehouse=info`), with one correction to
//! Pingora's: a client that opens a connection and closes it (or stalls) before its request
//! line and headers are complete is the client's doing, not an error of the gateway. Pingora logs
//! those at ERROR; here they are DEBUG. And a new process started with `run -u` waiting for the
//! old one's sockets is INFO, not ERROR. So an ERROR line always means something an operator
//! should look at (docs/operations.md).

use log::{Level, Log, Metadata, Record};

struct Logger {
    inner: env_logger::Logger,
}

/// The level a Pingora ERROR record really has, when it is not an error of the gateway.
fn demoted(record: &Record) -> Option<Level> {
    if record.level() != Level::Error {
        return None;
    }
    if record.target() == "pingora_core::server::transfer_fd"
        && record
            .args()
            .to_string()
            .contains("No incoming socket transfer")
    {
        return Some(Level::Info);
    }
    client_noise(record).then_some(Level::Debug)
}

/// Whether a record is Pingora reporting a client-side failure before a request was read.
fn client_noise(record: &Record) -> bool {
    match record.target() {
        // "Fail to proxy: ... while reading request headers ..., downstream session type: ..."
        "pingora_proxy" => {
            let m = record.args().to_string();
            m.contains("downstream session type")
                && [
                    "ConnectionClosed",
                    "ReadError",
                    "ReadTimedout",
                    "while reading request headers",
                ]
                .iter()
                .any(|k| m.contains(k))
        }
        // A TLS client that gives up or speaks plain HTTP to a TLS port.
        "pingora_core::services::listening" => {
            record.args().to_string().contains("Downstream handshake")
        }
        _ => false,
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        self.inner.enabled(metadata)
    }

    fn log(&self, record: &Record) {
        if !self.inner.enabled(record.metadata()) {
            return;
        }
        if let Some(level) = demoted(record) {
            let debug = Metadata::builder()
                .level(level)
                .target(record.target())
                .build();
            if self.inner.enabled(&debug) {
                self.inner.log(
                    &Record::builder()
                        .metadata(debug)
                        .args(*record.args())
                        .module_path(record.module_path())
                        .file(record.file())
                        .line(record.line())
                        .build(),
                );
            }
            return;
        }
        self.inner.log(record);
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

/// Install the process logger. Call once, first thing.
pub fn init() {
    let env = env_logger::Env::default().default_filter_or("warn,gatehouse=info");
    let inner = env_logger::Builder::from_env(env)
        .format_timestamp_millis()
        .build();
    let max = inner.filter();
    if log::set_boxed_logger(Box::new(Logger { inner })).is_ok() {
        log::set_max_level(max);
    }
}
