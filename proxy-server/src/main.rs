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

fn main() -> std::process::ExitCode {
    let config = match Config::resolve(Args::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("strata-proxy: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    init_logs(&config);
    let tokio = match tokio::runtime::Runtime::new() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("strata-proxy: starting tokio: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let code = match tokio.block_on(strata_proxy::server::run(config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("strata-proxy: {e:#}");
            std::process::ExitCode::FAILURE
        }
    };
    // Everything is flushed. Threads still blocked on a task's shim (an exit watcher, a Wait
    // whose caller is gone) must not hold the exit: the shims live on and are found again.
    tokio.shutdown_background();
    code
}
