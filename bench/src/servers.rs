//! Starts the two servers under test, each on a fresh root: strata-proxy and a private
//! containerd 1.6 (own config, root, state and socket; never the system daemon).

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

/// strata-proxy's task state directory (`--state`) when started on `root`: its own, never the
/// default /run/strata/state.
pub fn strata_state(root: &Path) -> PathBuf {
    root.join("state")
}

/// Starts strata-proxy (found next to this binary unless given) on `root`; its tasks' shim is
/// the `strata-shim` beside the binary.
pub fn start_strata(binary: &Path, root: &Path) -> anyhow::Result<Server> {
    let socket = root.join("strata.sock");
    let runtime_socket = root.join("runtime.sock");
    let mut child = Command::new(binary)
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

/// Starts a private containerd with its built-in content store and snapshotters on `root`.
/// It runs containers too: the task runtime (`io.containerd.runtime.v2.task`, default runtime
/// `io.containerd.runc.v2`: containerd-shim-runc-v2 and runc from PATH) is on by default in 1.6,
/// its state under `<root>/state`.
pub fn start_containerd(root: &Path) -> anyhow::Result<Server> {
    let socket = root.join("containerd.sock");
    let config = root.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "version = 2\nroot = \"{r}/root\"\nstate = \"{r}/state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{s}\"\n[ttrpc]\n  address = \"{r}/ttrpc.sock\"\n\
             [debug]\n  address = \"{r}/debug.sock\"\n",
            r = root.display(),
            s = socket.display()
        ),
    )?;
    let log = std::fs::File::create(root.join("containerd.log"))?;
    let mut child = Command::new("containerd")
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting containerd (apt-get install containerd)")?;
    wait_for_socket(&socket, &mut child, "containerd")?;
    Ok(Server {
        socket,
        runtime_socket: None,
        child,
        root: root.to_path_buf(),
    })
}
