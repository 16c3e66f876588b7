//! The `gatehouse` binary: a thin shell over `gatehouse::cli`.

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    let env = env_logger::Env::default().default_filter_or("warn,gatehouse=info");
    env_logger::Builder::from_env(env)
        .format_timestamp_millis()
        .init();
    let code = match gatehouse::cli::main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("gatehouse: {e:#}");
            1
        }
    };
    std::process::exit(code);
}
