//! `strata-lazy-serve --dir <snapshot dir> --registry <registry.json>`: serves one lazy
//! snapshot's FUSE mount for strata-lazy, in a process of its own so that the mount outlives the
//! daemon (restarts, upgrades, `kill -9`): the daemon starts one per lazy layer, waits for the
//! `ready` line on stdout, and ends it by unmounting `<dir>/fs`, after which it exits.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use strata_lazy::backend::{LazyConfig, registry_opener, serve};

#[derive(Parser, Debug)]
#[command(version, about = "serves one strata-lazy layer's FUSE mount")]
struct Args {
    /// The lazy snapshot's directory (holding lazy.json; the mount goes on its fs).
    #[arg(long)]
    dir: PathBuf,
    /// The registry settings (strata_registry::RegistryConfig as JSON).
    #[arg(long)]
    registry: PathBuf,
    /// Decompressed chunks kept in memory, in bytes.
    #[arg(long, default_value_t = strata_lazy::estargz::cache::DEFAULT_BUDGET)]
    cache_bytes: usize,
    /// Copy the layer beside the snapshot in the background.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    fill: bool,
    /// The file on-demand registry reads mark; the fill yields to recent marks.
    #[arg(long)]
    activity: Option<PathBuf>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter("info,fuse3=error")
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let args = Args::parse();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("strata-lazy-serve: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let r = serve::read_ref(&args.dir)
        .with_context(|| format!("reading {}", args.dir.display()))?
        .with_context(|| format!("{} is not a lazy snapshot", args.dir.display()))?;
    let json = std::fs::read(&args.registry)
        .with_context(|| format!("reading {}", args.registry.display()))?;
    let registry = strata_registry::Registry::new(serde_json::from_slice(&json)?)?;
    let opener = registry_opener(registry, tokio::runtime::Handle::current());
    let config = LazyConfig {
        cache_bytes: args.cache_bytes,
        background_fill: args.fill,
        activity: args.activity.clone(),
    };
    let (dir, r2, config2) = (args.dir.clone(), r.clone(), config.clone());
    let layer =
        tokio::task::spawn_blocking(move || serve::open_layer(&dir, &r2, &opener, &config2))
            .await??;
    let mounted = serve::mount_and_fill(&args.dir, &r, layer, &config).await?;
    println!("ready");
    std::io::stdout().flush()?;
    tracing::info!(dir = %args.dir.display(), layer = %r.digest, "serving");
    mounted.ended().await?;
    tracing::info!(dir = %args.dir.display(), "unmounted; exiting");
    Ok(())
}
