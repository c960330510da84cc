//! Starts the two servers under test, each on a fresh root: strata-proxy and a private
//! containerd 1.6 (own config, root, state and socket; never the system daemon).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A server process that is stopped (SIGTERM, then SIGKILL) and cleaned up on drop.
pub struct Server {
    pub socket: PathBuf,
    /// strata-proxy's runtime socket (containerd's own services); containerd serves them on
    /// `socket`.
    pub runtime_socket: Option<PathBuf>,
    /// The server's root directory (what it was started on).
    pub root: PathBuf,
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: kill(2) with a pid we own; failure (already gone) is harmless.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        unmount_below(&self.root);
    }
}

/// Detaches every mount below `root` (deepest first) so the temp dir can go.
pub fn unmount_below(root: &Path) {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = root.to_string_lossy().to_string();
    let mut points: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = Command::new("umount").args(["-l", p]).status();
    }
}

fn wait_for_socket(socket: &Path, child: &mut Child, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if std::os::unix::net::UnixStream::connect(socket).is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited early with {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("{what} did not open {} within 60 s", socket.display())
}

/// Starts a proxy snapshotter that takes containerd-stargz-grpc's flags (`--root`,
/// `--address`, `--config`) on `root`, with `config` written as its TOML config.
pub fn start_proxy_snapshotter(bin: &Path, root: &Path, config: &str) -> anyhow::Result<Server> {
    std::fs::create_dir_all(root)?;
    let toml = root.join("config.toml");
    std::fs::write(&toml, config)?;
    let config_arg = [OsStr::new("--config"), toml.as_os_str()];
    let what = bin.display().to_string();
    spawn_server(bin, root, "snapshotter", &what, &config_arg)
}

/// Starts `bin --root <root>/root --address <root>/<name>.sock <extra>`, its stderr in
/// `<root>/<name>.log`, and waits for its socket.
fn spawn_server(
    bin: &Path,
    root: &Path,
    name: &str,
    what: &str,
    extra: &[&OsStr],
) -> anyhow::Result<Server> {
    std::fs::create_dir_all(root)?;
    let socket = root.join(format!("{name}.sock"));
    let log = std::fs::File::create(root.join(format!("{name}.log")))?;
    let mut child = Command::new(bin)
        .arg("--root")
        .arg(root.join("root"))
        .arg("--address")
        .arg(&socket)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    wait_for_socket(&socket, &mut child, what)?;
    Ok(Server {
        socket,
        runtime_socket: None,
        child,
        root: root.to_path_buf(),
    })
}

/// The repository's root: the working directory when it holds `conformance/go`, else next to
/// this crate's sources (`CARGO_MANIFEST_DIR` at run time, then at build time).
fn repo_root() -> anyhow::Result<PathBuf> {
    let mut candidates = vec![std::env::current_dir()?];
    if let Some(m) = std::env::var_os("CARGO_MANIFEST_DIR") {
        candidates.push(PathBuf::from(m).join(".."));
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
    candidates
        .into_iter()
        .find(|d| d.join("conformance/go").is_dir())
        .context("the repository's Go sources not found (run from the repository's root)")
}

/// Builds the Go program at `<repo>/<pkg>` (integration/cri-pull, conformance/go/src/refproxy)
/// into `dir/bin/<its last component>` as the scripts do (GOPATH = the repository's
/// conformance/go and Debian's /usr/share/gocode); an error if go is missing or fails.
pub async fn build_go_tool(dir: &Path, pkg: &str) -> anyhow::Result<PathBuf> {
    anyhow::ensure!(
        crate::workloads::tasks::on_path("go"),
        "go not on PATH, needed to build {pkg} (apt-get install golang-go \
         golang-github-containerd-containerd-dev)"
    );
    let repo = repo_root()?;
    let name = Path::new(pkg).file_name().context("empty package path")?;
    let out = dir.join("bin").join(name);
    let gopath = format!(
        "{}:/usr/share/gocode",
        repo.join("conformance/go").display()
    );
    let built = tokio::process::Command::new("go")
        .args(["build", "-o"])
        .arg(&out)
        .arg(format!("./{pkg}"))
        .current_dir(&repo)
        .env("GO111MODULE", "off")
        .env("GOFLAGS", "")
        .env("GOPATH", gopath)
        .stdin(Stdio::null())
        .output()
        .await
        .context("running go build")?;
    anyhow::ensure!(
        built.status.success(),
        "go build of {pkg} failed ({}): {}",
        built.status,
        String::from_utf8_lossy(&built.stderr).trim()
    );
    Ok(out)
}

/// Starts conformance/go/src/refproxy (`bin`) on `root`: containerd 1.6's own local content
/// store (labels kept in memory) and overlay and native snapshotters (routed by snapshotter
/// name: `overlayfs`, `native`), served over the proxy Content and Snapshots APIs on
/// `root/ref.sock`, no containerd in front.
pub fn start_refproxy(bin: &Path, root: &Path) -> anyhow::Result<Server> {
    spawn_server(bin, root, "ref", "refproxy", &[])
}

/// strata-proxy's task state directory (`--state`) when started on `root`: its own, never the
/// default /run/strata/state.
pub fn strata_state(root: &Path) -> PathBuf {
    root.join("state")
}

/// Starts strata-proxy (found next to this binary unless given) on `root`; its tasks' shim is
/// the `strata-shim` beside the binary.
pub fn start_strata(binary: &Path, root: &Path) -> anyhow::Result<Server> {
    start_strata_with(binary, root, None)
}

/// Like [`start_strata`], with `config` (TOML text) as its `--config` file when given.
pub fn start_strata_with(
    binary: &Path,
    root: &Path,
    config: Option<&str>,
) -> anyhow::Result<Server> {
    let socket = root.join("strata.sock");
    let runtime_socket = root.join("runtime.sock");
    let mut cmd = Command::new(binary);
    if let Some(text) = config {
        let file = root.join("strata.toml");
        std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
        cmd.arg("--config").arg(file);
    }
    let mut child = cmd
        .arg("--root")
        .arg(root.join("root"))
        .arg("--address")
        .arg(&socket)
        .arg("--runtime-address")
        .arg(&runtime_socket)
        .arg("--state")
        .arg(strata_state(root))
        .arg("--log-level")
        .arg("warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    wait_for_socket(&socket, &mut child, "strata-proxy")?;
    wait_for_socket(&runtime_socket, &mut child, "strata-proxy (runtime socket)")?;
    Ok(Server {
        socket,
        runtime_socket: Some(runtime_socket),
        child,
        root: root.to_path_buf(),
    })
}

/// Which containerd to start: Debian's 1.6 from PATH, or a private 2.x (`<dir>/bin/containerd`,
/// `ctr` and `containerd-shim-runc-v2`, e.g. unpacked by `scripts/containerd2.sh`).
#[derive(Debug, Clone, Default)]
pub struct Containerd {
    /// The private 2.x installation's directory; None: 1.6 from PATH.
    pub v2_dir: Option<PathBuf>,
}

impl Containerd {
    /// "1.6" or "2.x".
    pub fn label(&self) -> &'static str {
        match self.v2_dir {
            Some(_) => "2.x",
            None => "1.6",
        }
    }

    /// The `ctr` that goes with it.
    pub fn ctr(&self) -> PathBuf {
        match &self.v2_dir {
            Some(d) => d.join("bin/ctr"),
            None => PathBuf::from("ctr"),
        }
    }

    /// The `containerd` binary.
    pub fn binary(&self) -> PathBuf {
        match &self.v2_dir {
            Some(d) => d.join("bin/containerd"),
            None => PathBuf::from("containerd"),
        }
    }
}

/// The built-in and the Strata snapshotters the deployed containerd may unpack into.
const BUILTIN: [&str; 2] = ["overlayfs", "native"];
const STRATA: [&str; 3] = ["strata-overlay", "strata-native", "strata-lazy"];

/// containerd's config on `root`: its built-in stores, or (`strata`: strata-proxy's socket)
/// Strata's content store (the built-in one disabled) and Strata's snapshotters as proxy plugins.
fn containerd_config(
    root: &Path,
    socket: &Path,
    strata: Option<&Path>,
    ctd: &Containerd,
    extra: &[(&str, &Path)],
) -> String {
    let v2 = ctd.v2_dir.is_some();
    let mut disabled = vec!["io.containerd.grpc.v1.cri"];
    if v2 {
        disabled.extend([
            "io.containerd.cri.v1.images",
            "io.containerd.cri.v1.runtime",
        ]);
    }
    if strata.is_some() {
        disabled.push("io.containerd.content.v1.content");
    }
    let quoted: Vec<String> = disabled.iter().map(|p| format!("\"{p}\"")).collect();
    let mut c = format!(
        "version = {}\nroot = \"{r}/root\"\nstate = \"{r}/state\"\n\
         disabled_plugins = [{}]\n\
         [grpc]\n  address = \"{s}\"\n[ttrpc]\n  address = \"{r}/ttrpc.sock\"\n\
         [debug]\n  address = \"{r}/debug.sock\"\n",
        if v2 { 3 } else { 2 },
        quoted.join(", "),
        r = root.display(),
        s = socket.display()
    );
    // strata-btrfs only where strata-proxy serves it, and btrfs only where containerd's loads:
    // the roots of this run are on btrfs.
    let btrfs = on_btrfs(root);
    let ours: Vec<&str> = STRATA
        .into_iter()
        .chain(btrfs.then_some("strata-btrfs"))
        .collect();
    if let Some(sock) = strata {
        let a = sock.display();
        c +=
            &format!("[proxy_plugins.strata-content]\n  type = \"content\"\n  address = \"{a}\"\n");
        for b in &ours {
            c += &format!("[proxy_plugins.{b}]\n  type = \"snapshot\"\n  address = \"{a}\"\n");
            if v2 {
                c += &format!(
                    "[proxy_plugins.{b}.exports]\n  enable_remote_snapshot_annotations = \"true\"\n"
                );
            }
        }
    }
    for (name, sock) in extra {
        c += &format!(
            "[proxy_plugins.{name}]\n  type = \"snapshot\"\n  address = \"{}\"\n",
            sock.display()
        );
    }
    if v2 {
        // 2.x's Transfer service unpacks only for the snapshotters listed (the list replaces
        // its default, overlayfs).
        c += "[plugins.\"io.containerd.transfer.v1.local\"]\n";
        let names = BUILTIN
            .into_iter()
            .chain(btrfs.then_some("btrfs"))
            .chain(strata.map_or(&[][..], |_| &ours[..]).iter().copied());
        for b in names {
            c += &format!(
                "  [[plugins.\"io.containerd.transfer.v1.local\".unpack_config]]\n    \
                 platform = \"linux/{}\"\n    snapshotter = \"{b}\"\n",
                go_arch()
            );
        }
    }
    c
}

/// The running machine's architecture as Go (and OCI platforms) name it.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Starts a private containerd with its built-in content store and snapshotters on `root`.
/// It runs containers too: the task runtime (`io.containerd.runtime.v2.task`, default runtime
/// `io.containerd.runc.v2`: containerd-shim-runc-v2 and runc from PATH) is on by default in 1.6,
/// its state under `<root>/state`.
pub fn start_containerd(root: &Path) -> anyhow::Result<Server> {
    start_containerd_on(root, None, &Containerd::default())
}

/// Starts the containerd `ctd` on `root`: with its built-in stores, or the way operators deploy
/// Strata (`strata`: strata-proxy's proxy socket as its content store and snapshotters).
pub fn start_containerd_on(
    root: &Path,
    strata: Option<&Path>,
    ctd: &Containerd,
) -> anyhow::Result<Server> {
    start_containerd_with(root, strata, ctd, &[])
}

/// [`start_containerd_on`], with more proxy snapshotters (`name`, socket) configured.
pub fn start_containerd_with(
    root: &Path,
    strata: Option<&Path>,
    ctd: &Containerd,
    extra: &[(&str, &Path)],
) -> anyhow::Result<Server> {
    let socket = root.join("containerd.sock");
    let config = root.join("config.toml");
    std::fs::write(
        &config,
        containerd_config(root, &socket, strata, ctd, extra),
    )?;
    let log = std::fs::File::create(root.join("containerd.log"))?;
    let mut cmd = Command::new(ctd.binary());
    if let Some(d) = &ctd.v2_dir {
        // Its own shim first on PATH.
        let path = std::env::var("PATH").unwrap_or_default();
        cmd.env("PATH", format!("{}:{path}", d.join("bin").display()));
    }
    let mut child = cmd
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| {
            format!(
                "starting {} (apt-get install containerd)",
                ctd.binary().display()
            )
        })?;
    wait_for_socket(&socket, &mut child, "containerd")?;
    Ok(Server {
        socket,
        runtime_socket: None,
        child,
        root: root.to_path_buf(),
    })
}

impl Server {
    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// Whether `dir` is on a btrfs file system (statfs magic).
pub fn on_btrfs(dir: &Path) -> bool {
    const BTRFS_SUPER_MAGIC: i64 = 0x9123_683E;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: an all-zero statfs is a valid value for the kernel to overwrite.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `st` a valid, writable statfs.
    let rc = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    rc == 0 && st.f_type as i64 == BTRFS_SUPER_MAGIC
}
