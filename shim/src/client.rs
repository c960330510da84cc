//! The daemon's side of a shim: starting one for a task directory and asking it things.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio as ProcStdio};

use crate::protocol::{ErrorKind, Request, Response};

/// A failure talking to a shim.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The shim answered with an error.
    #[error("{message}")]
    Shim { kind: ErrorKind, message: String },
    /// The shim cannot be reached (it died, or never started).
    #[error("shim at {path}: {source}")]
    Unreachable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The shim answered something this client does not understand.
    #[error("shim at {0}: bad answer: {1}")]
    Protocol(PathBuf, String),
}

/// How to start a shim (see the crate docs).
#[derive(Debug, Clone)]
pub struct Launch {
    /// The `strata-shim` binary.
    pub binary: PathBuf,
    /// The task directory (the OCI bundle).
    pub dir: PathBuf,
    /// Where the shim listens (kept short: unix socket paths hold 108 bytes).
    pub socket: PathBuf,
    /// The runc container id.
    pub id: String,
    /// runc's state root.
    pub runc_root: PathBuf,
    /// The runc binary.
    pub runc: PathBuf,
}

/// A shim, by its socket.
#[derive(Debug, Clone)]
pub struct Shim {
    socket: PathBuf,
}

impl Shim {
    /// The shim listening on `socket` (which may or may not be running).
    pub fn at(socket: &Path) -> Shim {
        Shim {
            socket: socket.to_path_buf(),
        }
    }

    /// Starts a shim; when this returns it accepts requests (it binds its socket before it
    /// detaches). The shim outlives the daemon.
    pub fn start(l: &Launch) -> Result<Shim, Error> {
        let unreachable = |source| Error::Unreachable {
            path: l.socket.clone(),
            source,
        };
        let status = Command::new(&l.binary)
            .arg("serve")
            .arg("--dir")
            .arg(&l.dir)
            .arg("--socket")
            .arg(&l.socket)
            .arg("--id")
            .arg(&l.id)
            .arg("--runc-root")
            .arg(&l.runc_root)
            .arg("--runc")
            .arg(&l.runc)
            .stdin(ProcStdio::null())
            .stdout(ProcStdio::null())
            .stderr(ProcStdio::piped())
            .output()
            .map_err(unreachable)?;
        if !status.status.success() {
            let why = String::from_utf8_lossy(&status.stderr).trim().to_string();
            return Err(unreachable(std::io::Error::other(format!(
                "{} exited with {}: {why}",
                l.binary.display(),
                status.status
            ))));
        }
        Ok(Shim::at(&l.socket))
    }

    /// Whether a shim answers on the socket.
    pub fn alive(&self) -> bool {
        UnixStream::connect(&self.socket).is_ok()
    }

    /// Sends one request and reads its answer (blocking; `Wait` blocks until the exit).
    pub fn call(&self, req: &Request) -> Result<Response, Error> {
        let unreachable = |source| Error::Unreachable {
            path: self.socket.clone(),
            source,
        };
        let mut conn = UnixStream::connect(&self.socket).map_err(unreachable)?;
        let mut line = serde_json::to_vec(req).expect("requests serialise");
        line.push(b'\n');
        conn.write_all(&line).map_err(unreachable)?;
        let mut answer = String::new();
        BufReader::new(conn)
            .read_line(&mut answer)
            .map_err(unreachable)?;
        if answer.is_empty() {
            return Err(unreachable(std::io::Error::from(
                std::io::ErrorKind::UnexpectedEof,
            )));
        }
        match serde_json::from_str(&answer) {
            Ok(Response::Error { kind, message }) => Err(Error::Shim { kind, message }),
            Ok(r) => Ok(r),
            Err(e) => Err(Error::Protocol(self.socket.clone(), e.to_string())),
        }
    }
}
