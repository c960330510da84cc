//! Command line and TOML configuration. Every key can be set in the file; flags win.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Parser;
use serde::Deserialize;

/// Default state directory.
pub const DEFAULT_ROOT: &str = "/var/lib/strata";
/// Default unix socket.
pub const DEFAULT_ADDRESS: &str = "/run/strata/strata.sock";
/// Default runtime socket (containerd's own APIs, namespaced).
pub const DEFAULT_RUNTIME_ADDRESS: &str = "/run/strata/runtime.sock";

/// strata-proxy: containerd's Content and Snapshots services on one unix socket.
#[derive(Debug, Parser)]
#[command(name = "strata-proxy", version, about)]
pub struct Args {
    /// State directory (RocksDB, blobs, snapshots) [default: /var/lib/strata].
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Unix socket of the proxy plugins (Content and Snapshots, one flat view)
    /// [default: /run/strata/strata.sock].
    #[arg(long)]
    pub address: Option<PathBuf>,
    /// Unix socket of the runtime: containerd's own services, namespaced, for `ctr` and
    /// containerd's Go client [default: /run/strata/runtime.sock].
    #[arg(long)]
    pub runtime_address: Option<PathBuf>,
    /// TOML file with the same keys (root, address, runtime_address, log_level,
    /// metrics_address, default_snapshotter, and a [gc] table); flags override it.
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
    /// Task state (bundles, shim sockets, runc state): on a tmpfs, one per daemon
    /// [default: /run/strata/state].
    #[arg(long)]
    pub state: Option<PathBuf>,
}

/// `[tasks]`: what runs containers.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TasksFile {
    /// The runc binary [default: runc from PATH].
    pub runc: Option<PathBuf>,
    /// The strata-shim binary [default: the one beside strata-proxy].
    pub shim: Option<PathBuf>,
}

/// The keys a config file may set.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub root: Option<PathBuf>,
    pub address: Option<PathBuf>,
    pub runtime_address: Option<PathBuf>,
    pub log_level: Option<String>,
    pub log_json: Option<bool>,
    pub metrics_address: Option<String>,
    pub default_snapshotter: Option<String>,
    pub gc: Option<GcFile>,
    pub unpack: Option<UnpackFile>,
    pub offload: Option<OffloadFile>,
    pub state: Option<PathBuf>,
    pub tasks: Option<TasksFile>,
}

/// The `[offload]` table: unpacking for a stock containerd's remote-snapshotter Prepares.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OffloadFile {
    pub enabled: Option<bool>,
    /// Registries (`host:port`) layer blobs may be fetched from over plain HTTP.
    pub insecure_registries: Option<Vec<String>>,
}

impl OffloadFile {
    fn resolve(self) -> crate::offload::OffloadConfig {
        let d = crate::offload::OffloadConfig::default();
        crate::offload::OffloadConfig {
            enabled: self.enabled.unwrap_or(d.enabled),
            insecure_registries: self.insecure_registries.unwrap_or(d.insecure_registries),
        }
    }
}

/// The `[unpack]` table: limits of layer application (the runtime's Diff service).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnpackFile {
    /// Whether layers may create character and block devices.
    pub allow_devices: Option<bool>,
    /// Largest uncompressed layer in bytes (a decompression bomb fails here).
    pub max_layer_bytes: Option<u64>,
    /// Most entries in one layer.
    pub max_layer_entries: Option<u64>,
}

impl UnpackFile {
    fn resolve(self) -> strata_runtime::UnpackConfig {
        let d = strata_runtime::UnpackConfig::default();
        strata_runtime::UnpackConfig {
            allow_devices: self.allow_devices.unwrap_or(d.allow_devices),
            max_layer_bytes: self.max_layer_bytes.unwrap_or(d.max_layer_bytes),
            max_layer_entries: self.max_layer_entries.unwrap_or(d.max_layer_entries),
        }
    }
}

/// The `[gc]` table: the runtime's garbage collection scheduler (containerd's
/// `io.containerd.gc.v1.scheduler` keys and defaults).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcFile {
    pub pause_threshold: Option<f64>,
    pub deletion_threshold: Option<usize>,
    pub mutation_threshold: Option<usize>,
    /// Milliseconds.
    pub schedule_delay_ms: Option<u64>,
    /// Milliseconds.
    pub startup_delay_ms: Option<u64>,
}

impl GcFile {
    fn resolve(self) -> strata_runtime::GcConfig {
        let d = strata_runtime::GcConfig::default();
        let ms = std::time::Duration::from_millis;
        strata_runtime::GcConfig {
            pause_threshold: self.pause_threshold.unwrap_or(d.pause_threshold),
            deletion_threshold: self.deletion_threshold.unwrap_or(d.deletion_threshold),
            mutation_threshold: self.mutation_threshold.unwrap_or(d.mutation_threshold),
            schedule_delay: self.schedule_delay_ms.map_or(d.schedule_delay, ms),
            startup_delay: self.startup_delay_ms.map_or(d.startup_delay, ms),
        }
    }
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub root: PathBuf,
    pub address: PathBuf,
    pub runtime_address: PathBuf,
    pub log_level: String,
    pub log_json: bool,
    pub metrics_address: Option<String>,
    pub default_snapshotter: String,
    pub gc: strata_runtime::GcConfig,
    pub unpack: strata_runtime::UnpackConfig,
    pub offload: crate::offload::OffloadConfig,
    pub tasks: strata_runtime::TaskConfig,
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
        let root = args
            .root
            .or(file.root)
            .unwrap_or_else(|| DEFAULT_ROOT.into());
        Ok(Config {
            root: absolute_root(&root)?,
            address: args
                .address
                .or(file.address)
                .unwrap_or_else(|| DEFAULT_ADDRESS.into()),
            runtime_address: args
                .runtime_address
                .or(file.runtime_address)
                .unwrap_or_else(|| DEFAULT_RUNTIME_ADDRESS.into()),
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
            gc: file.gc.unwrap_or_default().resolve(),
            unpack: file.unpack.unwrap_or_default().resolve(),
            offload: file.offload.unwrap_or_default().resolve(),
            tasks: {
                let defaults = strata_runtime::TaskConfig::default();
                let t = file.tasks.unwrap_or_default();
                strata_runtime::TaskConfig {
                    state: args.state.or(file.state).unwrap_or(defaults.state),
                    shim: t.shim.unwrap_or(defaults.shim),
                    runc: t.runc.unwrap_or(defaults.runc),
                }
            },
        })
    }
}

/// The root as an absolute path (a relative one is joined to the working directory, which
/// the daemon's later mounts and child processes do not share). A root with `,` or `:` is
/// refused: overlay mount options (`lowerdir=a:b,upperdir=...`) cannot carry them.
fn absolute_root(root: &Path) -> anyhow::Result<PathBuf> {
    let abs = std::path::absolute(root)
        .with_context(|| format!("making root {} absolute", root.display()))?;
    let text = abs.to_string_lossy();
    if text.contains([',', ':']) {
        anyhow::bail!(
            "root {} contains ',' or ':', which overlay mount options cannot carry",
            abs.display()
        );
    }
    Ok(abs)
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
        assert_eq!(c.runtime_address, PathBuf::from(DEFAULT_RUNTIME_ADDRESS));
        assert_eq!(c.gc, strata_runtime::GcConfig::default());
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

    #[test]
    fn relative_root_is_made_absolute() {
        let args = Args::parse_from(["strata-proxy", "--root", "rel/state"]);
        let c = Config::resolve(args).unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(c.root, cwd.join("rel/state"));
        assert!(c.root.is_absolute());
    }

    #[test]
    fn roots_with_overlay_separators_are_refused() {
        for root in ["/var/lib/a,b", "/var/lib/a:b", "rel,x"] {
            let args = Args::parse_from(["strata-proxy", "--root", root]);
            let err = Config::resolve(args).unwrap_err();
            let msg = format!("{err:#}");
            assert!(msg.contains(root) && msg.contains("root"), "{msg}");
        }
    }
}
