//! Running `runc`: every call with the task's state root and log, waited for through the
//! reaper (never `Child::wait`, which would race it).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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
        c.arg("--log")
            .arg(self.bundle.join("runc.log"))
            .arg("--log-format")
            .arg("json");
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

    /// The pid runc wrote to `file`.
    pub fn read_pid(file: &Path) -> Result<u32, Failure> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| Failure::internal(format!("reading {}: {e}", file.display())))?;
        text.trim()
            .parse()
            .map_err(|_| Failure::internal(format!("bad pid in {}: {text:?}", file.display())))
    }
}
