//! `strata-proxy --root DIR --address SOCKET`: see `strata-proxy --help`.

use clap::Parser;
use strata_proxy::config::{Args, Config};
use tracing_subscriber::EnvFilter;

fn init_logs(config: &Config) {
    let filter = EnvFilter::try_new(&config.log_level).unwrap_or_else(|e| {
        eprintln!(
            "strata-proxy: bad --log-level {:?}: {e}; using info",
            config.log_level
        );
        EnvFilter::new("info")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// How long the exit waits for blocking work that was in flight when serving stopped.
const SHUTDOWN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn main() -> std::process::ExitCode {
    let config = match Config::resolve(Args::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("strata-proxy: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    init_logs(&config);
    // Before any thread exists: it reads and clears the environment.
    let start = match strata_proxy::server::Start::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("strata-proxy: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    let tokio = match tokio::runtime::Runtime::new() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("strata-proxy: starting tokio: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let code = match tokio.block_on(strata_proxy::server::run(config, start)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("strata-proxy: {e:#}");
            std::process::ExitCode::FAILURE
        }
    };
    // Everything is flushed. Short blocking work (a content read or write whose stream was
    // dropped) ends now: wait for it, as it may still be using the database. Threads blocked on
    // a task's shim (exit watchers, Waits) are not tokio's: they do not hold the exit, and the
    // shims live on to be found again.
    tokio.shutdown_timeout(SHUTDOWN_TIMEOUT);
    code
}
