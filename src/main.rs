//! The `gatehouse` binary: a thin shell over `gatehouse::cli`.

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    // Before anything else: a SIGHUP from now on is a reload request, never fatal.
    gatehouse::cli::catch_early_sighup();
    gatehouse::observe::logging::init();
    let code = match gatehouse::cli::main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("gatehouse: {e:#}");
            1
        }
    };
    std::process::exit(code);
}
