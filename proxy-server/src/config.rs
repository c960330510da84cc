//! Command line and TOML configuration. Every key can be set in the file; flags win.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Parser;
use serde::Deserialize;
use strata_core::PROXY_VIEW;

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
    /// One more proxy socket with its own view, `NAME=ADDRESS` (repeatable): a second
    /// containerd on this root, whose garbage collection never touches the others' data.
    /// Replaces the config file's `[[proxy]]` tables.
    #[arg(long = "proxy", value_name = "NAME=ADDRESS")]
    pub proxies: Vec<String>,
    /// Unix socket of the runtime: containerd's own services, namespaced, for `ctr` and
    /// containerd's Go client [default: /run/strata/runtime.sock].
    #[arg(long)]
    pub runtime_address: Option<PathBuf>,
    /// TOML file with the same keys (root, address, runtime_address, log_level,
    /// metrics_address, default_snapshotter, [[proxy]] tables and a [gc] table); flags
    /// override it.
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
    /// `[[proxy]]`: more proxy sockets, each its own view.
    pub proxy: Option<Vec<ProxyFile>>,
    pub runtime_address: Option<PathBuf>,
    pub log_level: Option<String>,
    pub log_json: Option<bool>,
    pub metrics_address: Option<String>,
    pub default_snapshotter: Option<String>,
    pub gc: Option<GcFile>,
    pub unpack: Option<UnpackFile>,
    pub offload: Option<OffloadFile>,
    pub registry: Option<strata_registry::RegistryConfig>,
    pub lazy: Option<LazyFile>,
    pub state: Option<PathBuf>,
    pub tasks: Option<TasksFile>,
}

/// A `[[proxy]]` table: one more proxy socket and the name of its view.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyFile {
    pub address: PathBuf,
    pub view: String,
}

/// A proxy socket and the view everything arriving on it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxySocket {
    pub address: PathBuf,
    /// The store view: [`PROXY_VIEW`] for `address`, `proxy/<name>` for a `[[proxy]]`.
    pub view: String,
}

/// The view of the extra proxy socket named `name` (never [`PROXY_VIEW`] nor a runtime
/// namespace's `ns/<name>`).
pub fn proxy_view(name: &str) -> String {
    format!("{PROXY_VIEW}/{name}")
}

/// Parses `--proxy NAME=ADDRESS`.
fn parse_proxy_flag(flag: &str) -> anyhow::Result<ProxyFile> {
    match flag.split_once('=') {
        Some((view, address)) if !address.is_empty() => Ok(ProxyFile {
            address: address.into(),
            view: view.to_string(),
        }),
        _ => bail!("--proxy {flag:?}: expected NAME=ADDRESS"),
    }
}

/// Every proxy socket: the default one (`address`, [`PROXY_VIEW`]) first, then `extra`.
/// Refuses a view name that is empty or not `[A-Za-z0-9._-]`, and a view or address given
/// twice (the runtime's socket included).
fn proxy_sockets(
    address: PathBuf,
    runtime_address: &Path,
    extra: Vec<ProxyFile>,
) -> anyhow::Result<Vec<ProxySocket>> {
    let mut out = vec![ProxySocket {
        address,
        view: PROXY_VIEW.to_string(),
    }];
    for p in extra {
        let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if p.view.is_empty() || !p.view.chars().all(ok) {
            bail!(
                "proxy view {:?}: a name must be non-empty, of [A-Za-z0-9._-]",
                p.view
            );
        }
        let view = proxy_view(&p.view);
        if out.iter().any(|s| s.view == view) {
            bail!("proxy view {:?} is configured twice", p.view);
        }
        if p.address == runtime_address || out.iter().any(|s| s.address == p.address) {
            bail!(
                "proxy view {:?}: address {} is already in use by another socket",
                p.view,
                p.address.display()
            );
        }
        out.push(ProxySocket {
            address: p.address,
            view,
        });
    }
    Ok(out)
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

/// The `[lazy]` table: the `strata-lazy` backend.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LazyFile {
    /// Whether `strata-lazy` is served (default true).
    pub enabled: Option<bool>,
    /// Decompressed chunks kept in memory per lazy layer, in MiB (default 64).
    pub cache_mib: Option<usize>,
    /// Whether each lazy layer is copied in the background, after which reads are local
    /// (default true).
    pub background_fill: Option<bool>,
    /// Whether layers of eStargz / zstd:chunked images pulled through the runtime socket are
    /// kept remote (the Write answered AlreadyExists, the blob filled in the background), so
    /// that `strata-lazy` serves them lazily (default true).
    pub runtime_pull: Option<bool>,
}

/// The resolved `[lazy]` settings.
#[derive(Debug, Clone)]
pub struct LazySettings {
    pub enabled: bool,
    pub runtime_pull: bool,
    pub layer: strata_lazy::backend::LazyConfig,
}

impl LazyFile {
    fn resolve(self) -> LazySettings {
        let d = strata_lazy::backend::LazyConfig::default();
        LazySettings {
            enabled: self.enabled.unwrap_or(true),
            runtime_pull: self.runtime_pull.unwrap_or(true),
            layer: strata_lazy::backend::LazyConfig {
                cache_bytes: self.cache_mib.map_or(d.cache_bytes, |m| m << 20),
                background_fill: self.background_fill.unwrap_or(d.background_fill),
                activity: None,
            },
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
    /// Whether a client's unpack onto strata-overlay on the runtime socket applies every layer
    /// of the image at once (default true).
    pub parallel: Option<bool>,
}

impl UnpackFile {
    fn resolve(self) -> strata_runtime::UnpackConfig {
        let d = strata_runtime::UnpackConfig::default();
        strata_runtime::UnpackConfig {
            allow_devices: self.allow_devices.unwrap_or(d.allow_devices),
            max_layer_bytes: self.max_layer_bytes.unwrap_or(d.max_layer_bytes),
            max_layer_entries: self.max_layer_entries.unwrap_or(d.max_layer_entries),
            parallel: self.parallel.unwrap_or(d.parallel),
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
    /// Every proxy socket, the default one (`address`) first.
    pub proxies: Vec<ProxySocket>,
    pub runtime_address: PathBuf,
    pub log_level: String,
    pub log_json: bool,
    pub metrics_address: Option<String>,
    pub default_snapshotter: String,
    pub gc: strata_runtime::GcConfig,
    pub unpack: strata_runtime::UnpackConfig,
    pub offload: crate::offload::OffloadConfig,
    /// How registries are reached (the offload's and strata-lazy's fetches); hosts of
    /// `[offload] insecure_registries` are reached over plain HTTP too.
    pub registry: strata_registry::RegistryConfig,
    pub lazy: LazySettings,
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
        let address: PathBuf = args
            .address
            .or(file.address)
            .unwrap_or_else(|| DEFAULT_ADDRESS.into());
        let runtime_address = args
            .runtime_address
            .or(file.runtime_address)
            .unwrap_or_else(|| DEFAULT_RUNTIME_ADDRESS.into());
        let extra = match args.proxies.is_empty() {
            true => file.proxy.unwrap_or_default(),
            false => args
                .proxies
                .iter()
                .map(|f| parse_proxy_flag(f))
                .collect::<anyhow::Result<_>>()?,
        };
        let offload = file.offload.unwrap_or_default().resolve();
        Ok(Config {
            root: absolute_root(&root)?,
            proxies: proxy_sockets(address.clone(), &runtime_address, extra)?,
            address,
            runtime_address,
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
            registry: registry_config(file.registry.unwrap_or_default(), &offload),
            lazy: file.lazy.unwrap_or_default().resolve(),
            offload,
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

/// `[registry]` with the hosts of `[offload] insecure_registries` added to its plain-HTTP ones.
fn registry_config(
    mut r: strata_registry::RegistryConfig,
    offload: &crate::offload::OffloadConfig,
) -> strata_registry::RegistryConfig {
    for h in &offload.insecure_registries {
        if !r.plain_http.contains(h) {
            r.plain_http.push(h.clone());
        }
    }
    r
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

    fn resolve(args: &[&str], file: &str) -> anyhow::Result<Config> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, file).unwrap();
        let mut all = vec!["strata-proxy", "--config", path.to_str().unwrap()];
        all.extend_from_slice(args);
        Config::resolve(Args::parse_from(all))
    }

    fn sockets(c: &Config) -> Vec<(&str, &str)> {
        let s = c.proxies.iter();
        s.map(|p| (p.address.to_str().unwrap(), p.view.as_str()))
            .collect()
    }

    #[test]
    fn proxy_tables_and_flags_add_sockets_with_their_own_views() {
        let file = "address = \"/a.sock\"\n[[proxy]]\naddress = \"/b.sock\"\nview = \"b\"\n\
                    [[proxy]]\naddress = \"/c.sock\"\nview = \"c-1.x_y\"\n";
        let c = resolve(&[], file).unwrap();
        let want = [
            ("/a.sock", "proxy"),
            ("/b.sock", "proxy/b"),
            ("/c.sock", "proxy/c-1.x_y"),
        ];
        assert_eq!(sockets(&c), want);
        // Flags replace the file's tables.
        let c = resolve(&["--proxy", "d=/d.sock"], file).unwrap();
        assert_eq!(sockets(&c), [("/a.sock", "proxy"), ("/d.sock", "proxy/d")]);
        let c = resolve(&[], "").unwrap();
        assert_eq!(sockets(&c), [(DEFAULT_ADDRESS, PROXY_VIEW)]);
    }

    #[test]
    fn bad_or_repeated_proxy_views_and_addresses_are_refused() {
        let t = |a: &str, v: &str| format!("[[proxy]]\naddress = \"{a}\"\nview = \"{v}\"\n");
        let cases = [
            (t("/b.sock", ""), "\"\""),
            (t("/b.sock", "a/b"), "a/b"),
            (t("/b.sock", "ns x"), "ns x"),
            (t("/b.sock", "b") + &t("/c.sock", "b"), "twice"),
            (t("/b.sock", "b") + &t("/b.sock", "c"), "/b.sock"),
            (t("/a.sock", "b"), "/a.sock"),
            (t("/r.sock", "b"), "/r.sock"),
        ];
        for (body, needle) in cases {
            let file = format!("address = \"/a.sock\"\nruntime_address = \"/r.sock\"\n{body}");
            let err = resolve(&[], &file).unwrap_err();
            let msg = format!("{err:#}");
            assert!(msg.contains(needle), "{file}: {msg}");
        }
        for flag in ["nameonly", "b=", "=/x.sock"] {
            let err = resolve(&["--proxy", flag], "").unwrap_err();
            assert!(format!("{err:#}").contains("proxy"), "{flag}: {err:#}");
        }
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
