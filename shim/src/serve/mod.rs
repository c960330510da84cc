//! The shim process: detaches, becomes a child subreaper, serves requests on its socket.

mod io;
mod reaper;
mod runc;
mod task;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::Arc;

use strata_shim::protocol::{ErrorKind, Request, Response};

/// What a shim serves.
pub struct Config {
    /// The task directory: the OCI bundle (`config.json`, `rootfs/`), sockets, exit files.
    pub dir: PathBuf,
    /// Where the shim listens.
    pub socket: PathBuf,
    /// The runc container id.
    pub id: String,
    pub runc_root: PathBuf,
    pub runc: PathBuf,
}

/// A failure answered to the daemon.
#[derive(Debug)]
pub struct Failure {
    pub kind: ErrorKind,
    pub message: String,
}

impl Failure {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Failure {
        Failure::new(ErrorKind::Internal, message)
    }
}

/// Binds the socket, then forks: the parent returns (its exit tells the caller the socket is
/// ready), the child leaves the caller's session and process group, becomes a child subreaper
/// and serves until the task is deleted.
pub fn daemonize_and_serve(config: Config) -> std::io::Result<()> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(config.dir.join("shim.log"))?;
    let _ = std::fs::remove_file(&config.socket);
    let listener = UnixListener::bind(&config.socket)?;
    // SAFETY: called from `main` before any thread exists; the child only continues this
    // single-threaded code path.
    match unsafe { nix::unistd::fork() }.map_err(std::io::Error::from)? {
        nix::unistd::ForkResult::Parent { .. } => return Ok(()),
        nix::unistd::ForkResult::Child => {}
    }
    nix::unistd::setsid().map_err(std::io::Error::from)?;
    nix::sys::prctl::set_child_subreaper(true).map_err(std::io::Error::from)?;
    redirect_stdio(&log)?;
    std::env::set_current_dir(&config.dir)?;
    let reaper = reaper::Reaper::start();
    let task = Arc::new(task::Task::new(config, reaper));
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let task = task.clone();
        std::thread::spawn(move || {
            if let Err(e) = handle(&task, conn) {
                eprintln!("strata-shim: connection: {e}");
            }
        });
    }
    Ok(())
}

/// stdin from /dev/null, stdout and stderr into the log.
fn redirect_stdio(log: &std::fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let null = std::fs::File::open("/dev/null")?;
    for (from, to) in [
        (null.as_raw_fd(), 0),
        (log.as_raw_fd(), 1),
        (log.as_raw_fd(), 2),
    ] {
        nix::unistd::dup2(from, to).map_err(std::io::Error::from)?;
    }
    Ok(())
}

fn handle(task: &Arc<task::Task>, conn: UnixStream) -> std::io::Result<()> {
    let mut line = String::new();
    BufReader::new(&conn).read_line(&mut line)?;
    let response = match serde_json::from_str::<Request>(&line) {
        Ok(req) => {
            let delete = matches!(req, Request::Delete);
            let r = task.handle(req);
            if delete && !matches!(r, Response::Error { .. }) {
                answer(&conn, &r)?;
                task.finish();
            }
            r
        }
        Err(e) => Response::Error {
            kind: ErrorKind::InvalidArgument,
            message: format!("bad request: {e}"),
        },
    };
    answer(&conn, &response)
}

fn answer(mut conn: &UnixStream, r: &Response) -> std::io::Result<()> {
    let mut out = serde_json::to_vec(r).expect("responses serialise");
    out.push(b'\n');
    conn.write_all(&out)
}
