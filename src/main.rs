//! The etcdscript binary: parse the command line, start logging, run, exit with the outcome.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Counts what the process holds, so that a script holding too much is stopped cleanly.
#[global_allocator]
static ALLOCATOR: etcdscript::memory::Counting = etcdscript::memory::Counting;

fn main() {
    // Before any thread exists, so that every thread inherits the blocked signals.
    etcdscript::lifecycle::install_signal_thread();
    etcdscript::lifecycle::install_panic_hook();
    let cli = etcdscript::cli::parse();
    let default = match cli.verbose {
        0 => "warn",
        1 => "etcdscript=info",
        _ => "etcdscript=debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default)),
        )
        .with_writer(std::io::stderr)
        // Colour only on a terminal, and never where NO_COLOR is set (no-color.org).
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        // A closed stderr is not worth a panic: tracing would report it with `eprintln!`.
        .log_internal_errors(false)
        .init();
    std::process::exit(etcdscript::cli::dispatch(cli));
}
