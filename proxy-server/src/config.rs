//! Command line and TOML configuration. Every key can be set in the file; flags win.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Parser;
use serde::Deserialize;

/// Default state directory.
pub const DEFAULT_ROOT: &str = "/var/lib/strata";
/// Default unix socket.
pub const DEFAULT_ADDRESS: &str = "/run/strata/strata.sock";

/// strata-proxy: containerd's Content and Snapshots services on one unix socket.
#[derive(Debug, Parser)]
#[command(name = "strata-proxy", version, about)]
pub struct Args {
    /// State directory (RocksDB, blobs, snapshots) [default: /var/lib/strata].
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Unix socket to serve on [default: /run/strata/strata.sock].
    #[arg(long)]
    pub address: Option<PathBuf>,
    /// TOML file with the same keys (root, address, log_level, metrics_address,
    /// default_snapshotter); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Log filter (error, warn, info, debug, trace, or a tracing directive) [default: info].
    #[arg(long)]
    pub log_level: Option<String>,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    pub log_json: bool,
    /// Serve Prometheus metrics over HTTP on this address (e.g. 127.0.0.1:9464).
    #[arg(long)]
    pub metrics_address: Option<String>,
    /// Backend for requests with an empty snapshotter name [default: strata-overlay].
    #[arg(long)]
    pub default_snapshotter: Option<String>,
}

/// The keys a config file may set.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub root: Option<PathBuf>,
    pub address: Option<PathBuf>,
    pub log_level: Option<String>,
    pub log_json: Option<bool>,
    pub metrics_address: Option<String>,
    pub default_snapshotter: Option<String>,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub root: PathBuf,
    pub address: PathBuf,
    pub log_level: String,
    pub log_json: bool,
    pub metrics_address: Option<String>,
    pub default_snapshotter: String,
}

impl FileConfig {
    fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
    }
}

impl Config {
    /// Merges flags over the config file over the defaults.
    pub fn resolve(args: Args) -> anyhow::Result<Config> {
        let file = match &args.config {
            Some(p) => FileConfig::load(p)?,
            None => FileConfig::default(),
        };
        Ok(Config {
            root: args
                .root
                .or(file.root)
                .unwrap_or_else(|| DEFAULT_ROOT.into()),
            address: args
                .address
                .or(file.address)
                .unwrap_or_else(|| DEFAULT_ADDRESS.into()),
            log_level: args
                .log_level
                .or(file.log_level)
                .unwrap_or_else(|| "info".into()),
            log_json: args.log_json || file.log_json.unwrap_or(false),
            metrics_address: args.metrics_address.or(file.metrics_address),
            default_snapshotter: args
                .default_snapshotter
                .or(file.default_snapshotter)
                .unwrap_or_else(|| "strata-overlay".into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_file_and_defaults_fill_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "root = \"/from/file\"\naddress = \"/file.sock\"\n").unwrap();
        let args = Args::parse_from([
            "strata-proxy",
            "--config",
            path.to_str().unwrap(),
            "--address",
            "/flag.sock",
        ]);
        let c = Config::resolve(args).unwrap();
        assert_eq!(c.root, PathBuf::from("/from/file"));
        assert_eq!(c.address, PathBuf::from("/flag.sock"));
        assert_eq!(c.log_level, "info");
        assert_eq!(c.default_snapshotter, "strata-overlay");
    }

    #[test]
    fn unknown_keys_in_the_file_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "roots = \"/typo\"\n").unwrap();
        let args = Args::parse_from(["strata-proxy", "--config", path.to_str().unwrap()]);
        let err = Config::resolve(args).unwrap_err();
        assert!(format!("{err:#}").contains("roots"), "{err:#}");
    }
}
