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

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = match Config::resolve(Args::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("strata-proxy: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    init_logs(&config);
    match strata_proxy::server::run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("strata-proxy: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
