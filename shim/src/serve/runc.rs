//! Running `runc`: every call with the task's state root and log, waited for through the
//! reaper (never `Child::wait`, which would race it).

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::Duration;

use strata_shim::protocol::ErrorKind;

use super::Failure;
use super::reaper::Reaper;

/// The runc of one task.
pub struct Runc {
    pub binary: PathBuf,
    pub root: PathBuf,
    pub bundle: PathBuf,
    pub reaper: Reaper,
}

/// The standard streams a runc call hands to the process it starts.
pub struct Streams {
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
}

impl Streams {
    pub fn null() -> Streams {
        Streams {
            stdin: Stdio::null(),
            stdout: Stdio::null(),
            stderr: Stdio::null(),
        }
    }
}

impl Runc {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.binary);
        c.arg("--root").arg(&self.root);
        // After Delete the bundle is being removed: runc must not write a log into it.
        let log = if args.first() == Some(&"delete") {
            PathBuf::from("/dev/null")
        } else {
            self.bundle.join("runc.log")
        };
        c.arg("--log").arg(log).arg("--log-format").arg("json");
        c.args(args);
        c
    }

    /// Runs runc with `args` and `streams`; its stdout when asked. A failure carries runc's
    /// last log message.
    pub fn run(&self, args: &[&str], streams: Streams, capture: bool) -> Result<Vec<u8>, Failure> {
        let mut c = self.command(args);
        c.stdin(streams.stdin).stderr(streams.stderr);
        c.stdout(if capture {
            Stdio::piped()
        } else {
            streams.stdout
        });
        let mut child = c
            .spawn()
            .map_err(|e| Failure::internal(format!("running {}: {e}", self.binary.display())))?;
        let done = self.reaper.subscribe(child.id() as i32);
        let mut out = Vec::new();
        if let Some(mut so) = child.stdout.take() {
            let _ = so.read_to_end(&mut out);
        }
        drop(child);
        let status = done
            .recv()
            .map_err(|_| Failure::internal("runc was not reaped"))?;
        if status != 0 {
            return Err(self.failure(args.first().copied().unwrap_or("runc"), status));
        }
        Ok(out)
    }

    /// The last error runc logged, as a failure of `what`.
    fn failure(&self, what: &str, status: u32) -> Failure {
        let log = std::fs::read_to_string(self.bundle.join("runc.log")).unwrap_or_default();
        let msg = log
            .lines()
            .rev()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v.get("level").and_then(|l| l.as_str()) == Some("error"))
            .and_then(|v| v.get("msg").and_then(|m| m.as_str()).map(str::to_string))
            .unwrap_or_else(|| format!("exit status {status}"));
        let kind = if msg.contains("does not exist") {
            ErrorKind::NotFound
        } else {
            ErrorKind::Internal
        };
        Failure::new(kind, format!("runc {what}: {msg}"))
    }

    /// Starts created container `id`. This is what `runc start` does (runc 1.1,
    /// `libcontainer/container_linux.go` `exec()`), without the cost of starting runc: open
    /// the container's `exec.fifo` for reading — `runc init`, blocked opening it for writing,
    /// writes a byte and execs the process, which closes it — read it to the end and remove
    /// it. If the init process dies first (`exited`), a non-blocking writer releases the open
    /// and the empty read says so, as runc's 100 ms check does. Falls back to `runc start`
    /// when there is no fifo or systemd's NOTIFY_SOCKET must be relayed.
    pub fn start(&self, id: &str, exited: impl Fn() -> bool) -> Result<(), Failure> {
        let fifo = self.root.join(id).join("exec.fifo");
        if !fifo.exists() || std::env::var_os("NOTIFY_SOCKET").is_some() {
            return self.run(&["start", id], Streams::null(), false).map(drop);
        }
        let (tx, rx) = channel();
        let path = fifo.clone();
        std::thread::spawn(move || {
            let read = File::open(&path).and_then(|mut f| {
                let mut data = Vec::new();
                f.read_to_end(&mut data).map(|_| data)
            });
            let _ = tx.send(read);
        });
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(Ok(data)) if !data.is_empty() => {
                    let _ = std::fs::remove_file(&fifo);
                    return Ok(());
                }
                Ok(Ok(_)) => {
                    return Err(Failure::new(
                        ErrorKind::FailedPrecondition,
                        "container process is already dead",
                    ));
                }
                Ok(Err(e)) => return Err(Failure::internal(format!("runc start: {e}"))),
                Err(RecvTimeoutError::Timeout) if exited() => {
                    let _ = OpenOptions::new()
                        .write(true)
                        .custom_flags(libc::O_NONBLOCK)
                        .open(&fifo);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(Failure::internal("runc start: the fifo reader is gone"));
                }
            }
        }
    }

    /// The pid runc wrote to `file`.
    pub fn read_pid(file: &Path) -> Result<u32, Failure> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| Failure::internal(format!("reading {}: {e}", file.display())))?;
        text.trim()
            .parse()
            .map_err(|_| Failure::internal(format!("bad pid in {}: {text:?}", file.display())))
    }
}
