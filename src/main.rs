//! The `gatehouse` binary: a thin shell over `gatehouse::cli`.

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    // Before anything else: a SIGHUP from now on is a reload request, never fatal.
    gatehouse::cli::catch_early_sighup();
    gatehouse::observe::logging::init();
    // jemalloc's background threads return freed pages to the OS on their own (after the
    // start-up compile, after each reload's old snapshot is dropped); without them an idle
    // process keeps them until it allocates again.
    if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
        log::warn!("jemalloc background threads unavailable: {e}");
    }
    let code = match gatehouse::cli::main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("gatehouse: {e:#}");
            1
        }
    };
    std::process::exit(code);
}
