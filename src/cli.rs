//! Command line: `run`, `check`, `explain`, `version`. The only place that uses `anyhow`.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::{bail, Context};
use async_trait::async_trait;
use clap::{Parser, Subcommand, ValueEnum};
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::{Server, ShutdownWatch};
use pingora::services::background::{background_service, BackgroundService};
use pingora::services::listening::Service;

use crate::admin::Admin;
use crate::config::{self, LoadedConfig};
use crate::diag::Diagnostics;
use crate::gateway::load::Sources;
use crate::gateway::{self, explain};
use crate::policy::Scope;
use crate::proxy::Proxy;
use crate::runtime::Shared;

#[derive(Parser)]
#[command(
    name = "gatehouse",
    about = "API gateway running APIM-style XML policies on Pingora",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum ScopeArg {
    Global,
    Product,
    Api,
    Operation,
}

/// Serve an Azure APIOps extract (`config::apiops`): replaces the configuration's `apiops`.
#[derive(clap::Args)]
struct ApiopsArgs {
    /// The APIOps extract's folder (`apimartifacts/`): its APIs, products, named values,
    /// backends, fragments and policies, beside the configuration's.
    #[arg(long, value_name = "DIR")]
    apiops: Option<PathBuf>,
    /// With --apiops: leave out what cannot be served (listed as warnings) instead of refusing.
    #[arg(long)]
    skip_unsupported: bool,
}

impl ApiopsArgs {
    fn apply(&self) {
        if let Some(dir) = &self.apiops {
            crate::config::set_apiops_override(dir, self.skip_unsupported);
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Start the gateway.
    Run {
        #[arg(short, long, default_value = "conf/gatehouse.yaml")]
        config: PathBuf,
        /// Run in the background (Pingora daemon mode).
        #[arg(short, long)]
        daemon: bool,
        /// Take over the listening sockets of a running instance (zero-downtime upgrade).
        #[arg(short, long)]
        upgrade: bool,
        /// Check the configuration, then exit.
        #[arg(short, long)]
        test: bool,
        #[command(flatten)]
        apiops: ApiopsArgs,
    },
    /// Load and compile everything; print every problem; exit 1 on errors.
    Check {
        #[arg(short, long, default_value = "conf/gatehouse.yaml")]
        config: PathBuf,
        /// Check one standalone policy or fragment document instead of a configuration.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Scope the standalone document is meant for.
        #[arg(long, value_enum, default_value = "api")]
        scope: ScopeArg,
        /// With --policy: a named value the document uses, `NAME=VALUE` (repeatable).
        #[arg(long = "named-value", value_name = "NAME=VALUE")]
        named_values: Vec<String>,
        /// With --policy: a directory of fragments (`<id>.xml`) the document includes.
        #[arg(long, value_name = "DIR")]
        fragments: Option<PathBuf>,
        /// With --policy: take named values (and fragments, without --fragments) from --config.
        #[arg(long)]
        use_config: bool,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[command(flatten)]
        apiops: ApiopsArgs,
    },
    /// Print the effective policy of an operation and the order its statements run in.
    Explain {
        #[arg(short, long, default_value = "conf/gatehouse.yaml")]
        config: PathBuf,
        #[arg(long)]
        api: String,
        #[arg(long)]
        operation: String,
        #[arg(long)]
        product: Option<String>,
        #[command(flatten)]
        apiops: ApiopsArgs,
    },
    /// Write another source's configuration out as gatehouse YAML and policies.
    Import {
        #[command(subcommand)]
        source: ImportSource,
    },
    /// Print the version.
    Version,
}

#[derive(Subcommand)]
enum ImportSource {
    /// An Azure APIOps extract (`apimartifacts/`).
    Apiops {
        /// The extract's folder.
        dir: PathBuf,
        /// The folder to write (`gatehouse.yaml`, `policies/`, `specs/`); must not hold a
        /// `gatehouse.yaml` yet.
        #[arg(short, long)]
        out: PathBuf,
        /// Leave out what cannot be served (listed as warnings) instead of refusing.
        #[arg(long)]
        skip_unsupported: bool,
    },
}

pub fn main() -> anyhow::Result<i32> {
    // Before anything can sign or check a JWT (the first use would fix the library's default).
    crate::codec::jwt_crypto::install();
    // `--skip-unsupported` reads an APIOps extract's policies with the policy layer's reader.
    crate::config::apiops::set_policy_scan(crate::gateway::load::unsupported_policy);
    let cli = Cli::parse();
    match cli.command {
        Command::Import {
            source:
                ImportSource::Apiops {
                    dir,
                    out,
                    skip_unsupported,
                },
        } => {
            let d = crate::config::apiops::import(&dir, &out, skip_unsupported);
            print_diags(&d, Format::Text);
            if d.has_errors() {
                return Ok(1);
            }
            eprintln!("wrote {}", out.join("gatehouse.yaml").display());
            Ok(0)
        }
        Command::Version => {
            println!("gatehouse {} (pingora 0.9.1)", env!("CARGO_PKG_VERSION"));
            Ok(0)
        }
        Command::Check {
            config,
            policy,
            scope,
            format,
            named_values,
            fragments,
            use_config,
            apiops,
        } => {
            apiops.apply();
            let standalone = Standalone {
                named_values,
                fragments,
                use_config,
            };
            Ok(check(
                &config,
                policy.as_deref(),
                scope,
                format,
                &standalone,
            ))
        }
        Command::Explain {
            config,
            api,
            operation,
            product,
            apiops,
        } => {
            apiops.apply();
            let (cfg, gw) = load_or_report(&config)?;
            let _ = cfg;
            print!(
                "{}",
                explain::explain(&gw, &api, &operation, product.as_deref())
                    .map_err(anyhow::Error::msg)?
            );
            Ok(0)
        }
        Command::Run {
            config,
            daemon,
            upgrade,
            test,
            apiops,
        } => {
            apiops.apply();
            run(&config, daemon, upgrade, test)
        }
    }
}

fn print_diags(d: &Diagnostics, format: Format) {
    match format {
        Format::Text => eprint!("{}", d.render_text()),
        Format::Json => println!("{}", d.render_json()),
    }
}

/// `check --policy` options: what the standalone document is checked with.
struct Standalone {
    named_values: Vec<String>,
    fragments: Option<PathBuf>,
    use_config: bool,
}

fn check(
    config: &Path,
    policy: Option<&Path>,
    scope: ScopeArg,
    format: Format,
    standalone: &Standalone,
) -> i32 {
    let d = match policy {
        Some(p) => {
            let scope = match scope {
                ScopeArg::Global => Scope::Global,
                ScopeArg::Product => Scope::Product,
                ScopeArg::Api => Scope::Api,
                ScopeArg::Operation => Scope::Operation,
            };
            check_standalone(config, p, scope, standalone)
        }
        None => match config::load(config) {
            Ok(c) => {
                let mut d = match gateway::compile(&c, &Sources::read(&c)) {
                    Ok((_, warnings)) => warnings,
                    Err(d) => d,
                };
                check_listener_tls(&c, &mut d);
                d.sorted()
            }
            Err(d) => d,
        },
    };
    print_diags(&d, format);
    if d.has_errors() {
        if matches!(format, Format::Text) {
            eprintln!("{} error(s)", d.error_count());
        }
        1
    } else {
        if matches!(format, Format::Text) {
            eprintln!("ok");
        }
        0
    }
}

fn check_standalone(config: &Path, policy: &Path, scope: Scope, s: &Standalone) -> Diagnostics {
    let mut d = Diagnostics::new();
    let mut named = Vec::new();
    for pair in &s.named_values {
        match pair.split_once('=') {
            Some((n, v)) if !n.trim().is_empty() => {
                named.push((n.trim().to_string(), v.to_string()))
            }
            _ => d.error(
                "C057",
                crate::diag::Span::file("--named-value"),
                format!("--named-value takes NAME=VALUE, found {pair:?}"),
            ),
        }
    }
    let cfg = if s.use_config {
        match config::load(config) {
            Ok(c) => Some(c),
            Err(e) => return e,
        }
    } else {
        None
    };
    let with = gateway::load::CheckWith {
        config: cfg.as_ref(),
        named,
        fragments: s.fragments.as_deref(),
    };
    d.extend(gateway::load::check_policy_file(policy, scope, &with));
    d
}

/// The TLS listeners' certificates as they will be served: readable, PEM, each key the key of
/// its certificate, a name for every SNI certificate, a client CA that holds certificates.
fn check_listener_tls(cfg: &LoadedConfig, d: &mut Diagnostics) {
    for l in &cfg.raw.listeners {
        let Some(tls) = &l.tls else { continue };
        if let Err(e) = crate::proxy::tls::settings(&cfg.dir, tls, l.http2) {
            d.error(
                "C064",
                cfg.locate(None, "cert", &tls.cert),
                format!("TLS listener {}: {e}", l.address),
            );
        }
    }
}

fn load_or_report(path: &Path) -> anyhow::Result<(LoadedConfig, gateway::Gateway)> {
    let cfg = match config::load(path) {
        Ok(c) => c,
        Err(d) => {
            eprint!("{}", d.render_text());
            bail!("configuration has {} error(s)", d.error_count());
        }
    };
    match gateway::compile(&cfg, &Sources::read(&cfg)) {
        Ok((gw, warnings)) => {
            eprint!("{}", warnings.render_text());
            let mut d = Diagnostics::new();
            check_listener_tls(&cfg, &mut d);
            if d.has_errors() {
                eprint!("{}", d.render_text());
                bail!("configuration has {} error(s)", d.error_count());
            }
            Ok((cfg, gw))
        }
        Err(d) => {
            eprint!("{}", d.render_text());
            bail!("configuration has {} error(s)", d.error_count());
        }
    }
}

fn server_conf(cfg: &LoadedConfig, daemon: bool) -> ServerConf {
    let s = &cfg.raw.server;
    ServerConf {
        threads: s.threads.max(1),
        work_stealing: s.work_stealing,
        pid_file: s.pid_file.clone(),
        upgrade_sock: s.upgrade_sock.clone(),
        // `grace_period` (accepting while draining) is spent in `lifecycle::Signals` before
        // Pingora hears of the shutdown; Pingora's own grace period is then the time in-flight
        // requests get to finish after the listeners close.
        grace_period_seconds: Some(s.graceful_shutdown_timeout.0.as_secs()),
        graceful_shutdown_timeout_seconds: Some(1),
        error_log: s.error_log.clone(),
        user: s.user.clone(),
        group: s.group.clone(),
        upstream_keepalive_pool_size: s.upstream_keepalive_pool_size,
        daemon,
        ..ServerConf::default()
    }
}

/// Set by a SIGHUP that arrives before the reload service listens (while the configuration
/// loads, Pingora bootstraps or an upgrade waits for its handover): the reload service then
/// reloads once when it starts. Without it SIGHUP's default action would end the process.
static EARLY_HUP: std::sync::OnceLock<Arc<std::sync::atomic::AtomicBool>> =
    std::sync::OnceLock::new();

/// Catch SIGHUP from the first instant of the process (`main` calls this first); the reload
/// service picks up a signal that arrived before it started.
pub fn catch_early_sighup() {
    if EARLY_HUP.get().is_some() {
        return;
    }
    let hup = EARLY_HUP.get_or_init(Default::default).clone();
    if let Err(e) = signal_hook::flag::register(signal_hook::consts::SIGHUP, hup) {
        eprintln!("gatehouse: cannot catch SIGHUP early: {e}");
    }
    // SIGUSR2 (upgrade, `lifecycle`) before the signal watcher listens would end the process
    // by default; one that early is dropped (the start-up is itself the newest binary).
    let usr2 = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if let Err(e) = signal_hook::flag::register(signal_hook::consts::SIGUSR2, usr2) {
        eprintln!("gatehouse: cannot catch SIGUSR2 early: {e}");
    }
}

/// Every listening address must be free before Pingora binds it: Pingora retries a busy address
/// for 30 s while the rest of the process runs (`/readyz` answering `ready`), so whatever holds
/// the address would take this instance's traffic. An upgrade (`-u`) takes the sockets over
/// from the running instance instead, so it skips this.
fn check_addresses_free(cfg: &crate::config::LoadedConfig) -> anyhow::Result<()> {
    let addresses = cfg
        .raw
        .listeners
        .iter()
        .map(|l| l.address.as_str())
        .chain([cfg.raw.admin.address.as_str()]);
    let busy: Vec<String> = addresses
        .filter_map(|a| match std::net::TcpListener::bind(a) {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Some(format!("{a} ({e})")),
            _ => None,
        })
        .collect();
    if busy.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(
            "cannot listen on {}: another process holds it (for a zero-downtime upgrade, start with -u)",
            busy.join(", ")
        )
    }
}

fn run(path: &Path, daemon: bool, upgrade: bool, test: bool) -> anyhow::Result<i32> {
    catch_early_sighup();
    let (cfg, gw) = load_or_report(path)?;
    let config_path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let st = &cfg.raw.store;
    let store: Arc<dyn crate::store::Store> = match st.r#type {
        crate::config::StoreType::Memory => {
            // The embedded store always answers: `store_up` is 1 (an alert on 0 means Redis).
            if let Some(m) = crate::observe::metrics::get() {
                m.store_up.set(1);
            }
            Arc::new(crate::store::memory::MemoryStore::new(st.max_keys))
        }
        crate::config::StoreType::Redis => {
            let mode = match st.failure_mode {
                crate::config::StoreFailureMode::Local => crate::store::redis::FailureMode::Local,
                crate::config::StoreFailureMode::FailOpen => {
                    crate::store::redis::FailureMode::FailOpen
                }
                crate::config::StoreFailureMode::FailClosed => {
                    crate::store::redis::FailureMode::FailClosed
                }
            };
            let mut d = Diagnostics::new();
            let Some(target) = gateway::compile::redis_target(&cfg, &Sources::read(&cfg), &mut d)
            else {
                eprint!("{}", d.render_text());
                bail!("the store configuration has errors");
            };
            Arc::new(
                crate::store::redis::RedisStore::new(
                    &target,
                    &cfg.raw.name,
                    st.timeout.0,
                    mode,
                    st.max_keys,
                )
                .map_err(anyhow::Error::msg)
                .map(|r| match st.sync {
                    crate::config::StoreSync::Exact => r,
                    crate::config::StoreSync::Lease => {
                        r.with_lease(st.lease.size, st.lease.interval.0)
                    }
                })?,
            )
        }
    };
    let shared = Shared::new(
        gw,
        cfg.raw.access_log,
        config_path,
        cfg.raw.admin.echo,
        store,
        crate::config::start_only(&cfg.raw),
    );
    let opt = Opt {
        upgrade,
        daemon,
        nocapture: false,
        test,
        conf: None,
    };
    if !upgrade && !test {
        check_addresses_free(&cfg)?;
    }
    let mut server = Server::new_with_opt_and_conf(opt, server_conf(&cfg, daemon));
    server.bootstrap();

    let connector = pingora::connectors::http::Connector::new(Some(
        pingora::connectors::ConnectorOptions::from_server_conf(&server.configuration),
    ));
    // One service (one worker pool) for every listener; each listener has its own connection
    // limit (proxy::listener).
    let listeners: Vec<crate::proxy::listener::PortSpec> = cfg
        .raw
        .listeners
        .iter()
        .map(|l| crate::proxy::listener::PortSpec {
            address: l.address.clone(),
            max_connections: l.max_connections,
            h2c: l.http2 && l.tls.is_none(),
        })
        .collect();
    let mut proxy = Service::new(
        "gatehouse proxy".to_string(),
        crate::proxy::listener::Listener::new(
            pingora::proxy::http_proxy(
                &server.configuration,
                Proxy::new(shared.clone(), connector),
            ),
            shared.clone(),
            &listeners,
        ),
    );
    let mut certificates = Vec::new();
    for l in &cfg.raw.listeners {
        match &l.tls {
            None => proxy.add_tcp(&l.address),
            Some(tls) => {
                let (settings, set) = crate::proxy::tls::settings(&cfg.dir, tls, l.http2)
                    .map_err(anyhow::Error::msg)
                    .with_context(|| format!("TLS listener {}", l.address))?;
                proxy.add_tls_with_settings(&l.address, None, settings);
                certificates.push(ListenerCerts {
                    dir: cfg.dir.clone(),
                    address: l.address.clone(),
                    tls: tls.clone(),
                    set,
                });
            }
        }
    }
    server.add_service(proxy);
    if !cfg.raw.admin.address.is_empty() {
        let mut admin = Service::new(
            "gatehouse admin".to_string(),
            Admin {
                shared: shared.clone(),
            },
        );
        admin.add_tcp(&cfg.raw.admin.address);
        server.add_service(admin);
    }
    server.add_service(background_service(
        "gatehouse health checks",
        crate::upstream::health::HealthService {
            backends: {
                let shared = shared.clone();
                Box::new(move || shared.gateway.load_full())
            },
        },
    ));
    server.add_service(background_service(
        "gatehouse shared breakers",
        SharedBreakers {
            shared: shared.clone(),
        },
    ));
    server.add_service(background_service(
        "gatehouse reload",
        Reloader {
            shared: shared.clone(),
            otlp: cfg
                .raw
                .otlp
                .endpoint
                .clone()
                .map(|endpoint| crate::observe::otlp::Settings {
                    endpoint,
                    service_name: cfg
                        .raw
                        .otlp
                        .service_name
                        .clone()
                        .unwrap_or_else(|| cfg.raw.name.clone()),
                    headers: cfg
                        .raw
                        .otlp
                        .headers
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    batch_delay: cfg.raw.otlp.batch_delay.0,
                    timeout: cfg.raw.otlp.timeout.0,
                }),
            certificates,
            addresses: cfg
                .raw
                .listeners
                .iter()
                .map(|l| l.address.clone())
                .chain(Some(cfg.raw.admin.address.clone()).filter(|a| !a.is_empty()))
                .collect(),
        },
    ));
    log::info!(
        "gatehouse {} serving {} API(s) on {}",
        env!("CARGO_PKG_VERSION"),
        shared.gateway.load().apis.len(),
        cfg.raw
            .listeners
            .iter()
            .map(|l| l.address.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let signals = crate::lifecycle::Signals {
        shared: shared.clone(),
        grace_period: cfg.raw.server.grace_period.0,
        upgrade_sock: PathBuf::from(&cfg.raw.server.upgrade_sock),
    };
    // The configuration as read (its text, the parsed YAML, the index of positions for
    // diagnostics: about 1 KB per operation) is not needed while serving; a reload reads the
    // file again.
    drop(cfg);
    server.run(pingora::server::RunArgs {
        shutdown_signal: Box::new(signals),
    });
    crate::observe::access_log::flush();
    Ok(0)
}

/// Reloads the configuration on SIGHUP (Pingora handles TERM, INT and QUIT itself), and tells
/// the service manager about start-up, reloads and liveness (`systemd`).
/// Publishes and follows circuit-breaker trips shared through the store (`upstream::shared`).
struct SharedBreakers {
    shared: Arc<Shared>,
}

#[async_trait]
impl BackgroundService for SharedBreakers {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut tick = tokio::time::interval(crate::upstream::shared::TICK);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let gw = self.shared.gateway.load_full();
                    if crate::upstream::shared::any(&gw.backends) {
                        crate::upstream::shared::sync(&gw.backends, &*self.shared.store).await;
                    }
                }
                _ = shutdown.changed() => break,
            }
        }
    }
}

/// A TLS listener's certificates, read again on reload.
struct ListenerCerts {
    dir: PathBuf,
    address: String,
    tls: crate::config::ListenerTls,
    set: Arc<arc_swap::ArcSwap<crate::proxy::tls::CertSet>>,
}

struct Reloader {
    shared: Arc<Shared>,
    /// OpenTelemetry export, started here: after Pingora's fork, as its thread must be.
    otlp: Option<crate::observe::otlp::Settings>,
    certificates: Vec<ListenerCerts>,
    /// Every listening address (proxy and admin): `READY=1` waits until they are bound.
    addresses: Vec<String>,
}

/// How long start-up waits for Pingora to bind the listeners before it says ready anyway.
const BIND_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

impl Reloader {
    async fn reload(&self) {
        crate::systemd::reloading();
        let shared = self.shared.clone();
        let mut failed = !matches!(
            tokio::task::spawn_blocking(move || shared.reload_on_own_thread()).await,
            Ok(Ok(_))
        );
        for c in &self.certificates {
            failed |= !crate::proxy::tls::reload(&c.dir, &c.address, &c.tls, &c.set);
        }
        crate::systemd::reloaded(self.shared.generation.load(Ordering::SeqCst), failed);
    }
}

#[async_trait]
impl BackgroundService for Reloader {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                log::error!("cannot install the SIGHUP handler; reload is unavailable: {e}");
                None
            }
        };
        if let Some(o) = &self.otlp {
            match crate::observe::otlp::init(o) {
                Ok(()) => log::info!("exporting request spans to {}", o.endpoint),
                Err(e) => log::error!("OTLP export unavailable: {e}"),
            }
        }
        self.shared.store.warm_up().await;
        let addresses: Vec<&str> = self.addresses.iter().map(String::as_str).collect();
        let missing = crate::systemd::listeners_bound(&addresses, BIND_LIMIT).await;
        if !missing.is_empty() {
            log::warn!(
                "ports {missing:?} are not listening after {BIND_LIMIT:?}; reporting ready anyway"
            );
        }
        self.shared.ready.store(true, Ordering::SeqCst);
        crate::systemd::ready(self.shared.generation.load(Ordering::SeqCst));
        if EARLY_HUP
            .get()
            .is_some_and(|f| f.swap(false, Ordering::SeqCst))
        {
            log::info!("SIGHUP arrived during start-up: reloading now");
            self.reload().await;
        }
        let watchdog = crate::systemd::watchdog_interval();
        let mut tick =
            tokio::time::interval(watchdog.unwrap_or(std::time::Duration::from_secs(3600)));
        loop {
            tokio::select! {
                _ = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => {
                    self.reload().await;
                }
                _ = tick.tick(), if watchdog.is_some() => crate::systemd::watchdog(),
                _ = shutdown.changed() => break,
            }
        }
        crate::observe::otlp::flush();
    }
}
