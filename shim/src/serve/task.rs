//! One task: its init process and exec processes, driven through runc, with their exits.

use std::collections::HashMap;
use std::fs::File;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use strata_shim::protocol::{ErrorKind, Exit, ProcessState, Request, Response, Status, Stdio};

use super::io::{self, StdinEnd};
use super::reaper::Reaper;
use super::runc::{Runc, Streams};
use super::{Config, Failure};

/// One process of the task.
struct Proc {
    pid: u32,
    status: Status,
    stdio: Stdio,
    exit: Option<Exit>,
    stdin: Option<StdinEnd>,
    master: Option<File>,
}

impl Proc {
    fn new(stdio: Stdio) -> Proc {
        Proc {
            pid: 0,
            status: Status::Created,
            stdio,
            exit: None,
            stdin: None,
            master: None,
        }
    }

    fn state(&self) -> ProcessState {
        ProcessState {
            pid: self.pid,
            status: self.status,
            stdio: self.stdio.clone(),
            exit: self.exit,
        }
    }
}

#[derive(Default)]
struct State {
    init: Option<Proc>,
    execs: HashMap<String, Proc>,
}

/// See the module docs.
pub struct Task {
    cfg: Config,
    runc: Runc,
    state: Mutex<State>,
    exited: Condvar,
}

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

fn not_found(what: &str) -> Failure {
    Failure::new(ErrorKind::NotFound, format!("{what}: not found"))
}

impl Task {
    pub fn new(cfg: Config, reaper: Reaper) -> Task {
        let runc = Runc {
            binary: cfg.runc.clone(),
            root: cfg.runc_root.clone(),
            bundle: cfg.dir.clone(),
            reaper,
        };
        Task {
            cfg,
            runc,
            state: Mutex::default(),
            exited: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn handle(self: &Arc<Self>, req: Request) -> Response {
        let res = match req {
            Request::Create { stdio } => self.create(stdio),
            Request::Start { exec: None } => self.start(),
            Request::Start { exec: Some(e) } => self.start_exec(&e),
            Request::Exec { exec, spec, stdio } => self.exec(exec, &spec, stdio),
            Request::Kill { exec, signal, all } => self.kill(exec.as_deref(), signal, all),
            Request::Wait { exec } => self.wait(exec.as_deref()),
            Request::State { exec } => self.with(exec.as_deref(), |p| {
                Ok(Response::State { state: p.state() })
            }),
            Request::Pids => self.pids(),
            Request::Pause => self.pause(true),
            Request::Resume => self.pause(false),
            Request::Resize {
                exec,
                width,
                height,
            } => self.with(exec.as_deref(), |p| match &p.master {
                Some(m) => io::resize(m, width, height).map(|()| Response::Ok),
                None => Err(Failure::new(
                    ErrorKind::FailedPrecondition,
                    "the process has no terminal",
                )),
            }),
            Request::CloseIo { exec } => self.with(exec.as_deref(), |p| {
                if let Some(end) = &p.stdin {
                    end.lock().unwrap_or_else(|e| e.into_inner()).take();
                }
                Ok(Response::Ok)
            }),
            Request::DeleteProcess { exec } => self.delete_process(&exec),
            Request::Delete => self.delete(),
        };
        res.unwrap_or_else(|f| Response::Error {
            kind: f.kind,
            message: f.message,
        })
    }

    /// Runs `f` on the named process (None: init).
    fn with(
        &self,
        exec: Option<&str>,
        f: impl FnOnce(&mut Proc) -> Result<Response, Failure>,
    ) -> Result<Response, Failure> {
        let mut st = self.lock();
        let p = match exec {
            None => st.init.as_mut().ok_or_else(|| not_found("task"))?,
            Some(e) => st
                .execs
                .get_mut(e)
                .ok_or_else(|| not_found(&format!("exec {e}")))?,
        };
        f(p)
    }

    fn create(self: &Arc<Self>, stdio: Stdio) -> Result<Response, Failure> {
        if self.lock().init.is_some() {
            return Err(Failure::new(
                ErrorKind::AlreadyExists,
                format!("task {}: already exists", self.cfg.id),
            ));
        }
        let pid_file = self.cfg.dir.join("init.pid");
        let mut p = Proc::new(stdio.clone());
        let pid_arg = pid_file.display().to_string();
        let bundle = self.cfg.dir.display().to_string();
        if stdio.terminal {
            let sock = self.cfg.dir.join("console.sock");
            let listener = io::console_socket(&sock)?;
            let sock_arg = sock.display().to_string();
            let args = [
                "create",
                "--bundle",
                &bundle,
                "--pid-file",
                &pid_arg,
                "--console-socket",
                &sock_arg,
                &self.cfg.id,
            ];
            self.runc.run(&args, Streams::null(), false)?;
            let master = io::receive_master(&listener)?;
            p.stdin = io::attach_terminal(&master, &stdio.stdin, &stdio.stdout)?;
            p.master = Some(master);
        } else {
            let (streams, stdin) = io::plain(&stdio.stdin, &stdio.stdout, &stdio.stderr)?;
            let args = [
                "create",
                "--bundle",
                &bundle,
                "--pid-file",
                &pid_arg,
                &self.cfg.id,
            ];
            self.runc.run(&args, streams, false)?;
            p.stdin = stdin;
        }
        p.pid = Runc::read_pid(&pid_file)?;
        let pid = p.pid;
        self.lock().init = Some(p);
        self.watch(None, pid);
        Ok(Response::Pid { pid })
    }

    /// Records the exit of `pid` (the init process when `exec` is None) when it comes.
    fn watch(self: &Arc<Self>, exec: Option<String>, pid: u32) {
        let rx = self.runc.reaper.subscribe(pid as i32);
        let task = self.clone();
        std::thread::spawn(move || {
            if let Ok(status) = rx.recv() {
                task.record_exit(exec.as_deref(), status);
            }
        });
    }

    fn record_exit(&self, exec: Option<&str>, status: u32) {
        let exit = Exit {
            status,
            at: now_nanos(),
        };
        let name = exec.map_or("init".to_string(), |e| format!("exec-{e}"));
        let file = self.cfg.dir.join(format!("{name}.exit"));
        if let Err(e) = std::fs::write(&file, serde_json::to_vec(&exit).expect("exits serialise")) {
            eprintln!("strata-shim: writing {}: {e}", file.display());
        }
        let mut st = self.lock();
        let p = match exec {
            None => st.init.as_mut(),
            Some(e) => st.execs.get_mut(e),
        };
        if let Some(p) = p {
            p.exit = Some(exit);
            p.status = Status::Stopped;
        }
        drop(st);
        self.exited.notify_all();
    }

    fn start(&self) -> Result<Response, Failure> {
        let pid = {
            let st = self.lock();
            let p = st.init.as_ref().ok_or_else(|| not_found("task"))?;
            if p.status != Status::Created {
                return Err(Failure::new(
                    ErrorKind::FailedPrecondition,
                    "task is not in the created state",
                ));
            }
            p.pid
        };
        let exited = || self.lock().init.as_ref().is_some_and(|p| p.exit.is_some());
        self.runc.start(&self.cfg.id, exited)?;
        if let Some(p) = self.lock().init.as_mut()
            && p.status == Status::Created
        {
            p.status = Status::Running;
        }
        Ok(Response::Pid { pid })
    }

    fn exec(&self, exec: String, spec: &str, stdio: Stdio) -> Result<Response, Failure> {
        let mut st = self.lock();
        match &st.init {
            Some(p) if p.status == Status::Running || p.status == Status::Paused => {}
            _ => {
                return Err(Failure::new(
                    ErrorKind::FailedPrecondition,
                    "task is not running",
                ));
            }
        }
        if st.execs.contains_key(&exec) {
            return Err(Failure::new(
                ErrorKind::AlreadyExists,
                format!("exec {exec}: already exists"),
            ));
        }
        let file = self.cfg.dir.join(format!("exec-{exec}.json"));
        std::fs::write(&file, spec)
            .map_err(|e| Failure::internal(format!("writing {}: {e}", file.display())))?;
        st.execs.insert(exec, Proc::new(stdio));
        Ok(Response::Ok)
    }

    fn start_exec(self: &Arc<Self>, exec: &str) -> Result<Response, Failure> {
        let stdio = self.with(Some(exec), |p| match p.status {
            Status::Created => Ok(Response::State { state: p.state() }),
            _ => Err(Failure::new(
                ErrorKind::FailedPrecondition,
                format!("exec {exec} already started"),
            )),
        })?;
        let Response::State { state } = stdio else {
            unreachable!()
        };
        let (spec, pid_file) = (
            self.cfg.dir.join(format!("exec-{exec}.json")),
            self.cfg.dir.join(format!("exec-{exec}.pid")),
        );
        let (spec_arg, pid_arg) = (spec.display().to_string(), pid_file.display().to_string());
        let mut args = vec![
            "exec",
            "--detach",
            "--pid-file",
            &pid_arg,
            "--process",
            &spec_arg,
        ];
        let (stdin, master);
        if state.stdio.terminal {
            let sock = self.cfg.dir.join(format!("console-{exec}.sock"));
            let listener = io::console_socket(&sock)?;
            let sock_arg = sock.display().to_string();
            args.extend(["--console-socket", &sock_arg, &self.cfg.id]);
            self.runc.run(&args, Streams::null(), false)?;
            let m = io::receive_master(&listener)?;
            stdin = io::attach_terminal(&m, &state.stdio.stdin, &state.stdio.stdout)?;
            master = Some(m);
        } else {
            let (streams, s) =
                io::plain(&state.stdio.stdin, &state.stdio.stdout, &state.stdio.stderr)?;
            args.push(&self.cfg.id);
            self.runc.run(&args, streams, false)?;
            stdin = s;
            master = None;
        }
        let pid = Runc::read_pid(&pid_file)?;
        if let Some(p) = self.lock().execs.get_mut(exec) {
            p.pid = pid;
            p.status = Status::Running;
            p.stdin = stdin;
            p.master = master;
        }
        self.watch(Some(exec.to_string()), pid);
        Ok(Response::Pid { pid })
    }

    fn kill(&self, exec: Option<&str>, signal: u32, all: bool) -> Result<Response, Failure> {
        let (pid, exited) = {
            let st = self.lock();
            let p = match exec {
                None => st.init.as_ref().ok_or_else(|| not_found("task"))?,
                Some(e) => st
                    .execs
                    .get(e)
                    .ok_or_else(|| not_found(&format!("exec {e}")))?,
            };
            (p.pid, p.exit.is_some())
        };
        if exited {
            return Err(Failure::new(
                ErrorKind::NotFound,
                "process already finished",
            ));
        }
        // An exec added but never started has no process (pid 0 would signal the shim's own
        // process group).
        if pid == 0 {
            return Err(Failure::new(
                ErrorKind::FailedPrecondition,
                "process not created",
            ));
        }
        match exec {
            None => {
                let sig = signal.to_string();
                let mut args = vec!["kill"];
                if all {
                    args.push("--all");
                }
                args.extend([self.cfg.id.as_str(), sig.as_str()]);
                self.runc.run(&args, Streams::null(), false)?;
            }
            Some(_) => {
                let sig = nix::sys::signal::Signal::try_from(signal as i32).map_err(|_| {
                    Failure::new(ErrorKind::InvalidArgument, format!("bad signal {signal}"))
                })?;
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig)
                    .map_err(|e| Failure::internal(format!("kill {pid}: {e}")))?;
            }
        }
        Ok(Response::Ok)
    }

    fn wait(&self, exec: Option<&str>) -> Result<Response, Failure> {
        let mut st = self.lock();
        loop {
            let p = match exec {
                None => st.init.as_ref().ok_or_else(|| not_found("task"))?,
                Some(e) => st
                    .execs
                    .get(e)
                    .ok_or_else(|| not_found(&format!("exec {e}")))?,
            };
            if let Some(exit) = p.exit {
                return Ok(Response::Exited { exit });
            }
            st = self.exited.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn pids(&self) -> Result<Response, Failure> {
        let out = self.runc.run(
            &["ps", "--format", "json", &self.cfg.id],
            Streams::null(),
            true,
        )?;
        let pids: Vec<u32> = serde_json::from_slice(&out).unwrap_or_default();
        Ok(Response::Pids { pids })
    }

    fn pause(&self, pause: bool) -> Result<Response, Failure> {
        let op = if pause { "pause" } else { "resume" };
        self.runc.run(&[op, &self.cfg.id], Streams::null(), false)?;
        if let Some(p) = self.lock().init.as_mut()
            && p.exit.is_none()
        {
            p.status = if pause {
                Status::Paused
            } else {
                Status::Running
            };
        }
        Ok(Response::Ok)
    }

    fn delete_process(&self, exec: &str) -> Result<Response, Failure> {
        let mut st = self.lock();
        let p = st
            .execs
            .get(exec)
            .ok_or_else(|| not_found(&format!("exec {exec}")))?;
        // A process never started can go too (its status is 0, as containerd's).
        let exit = match (p.exit, p.status) {
            (Some(exit), _) => exit,
            (None, Status::Created) => Exit { status: 0, at: 0 },
            (None, _) => {
                return Err(Failure::new(
                    ErrorKind::FailedPrecondition,
                    format!("exec {exec} is still running"),
                ));
            }
        };
        st.execs.remove(exec);
        drop(st);
        for ext in ["json", "pid", "exit"] {
            let _ = std::fs::remove_file(self.cfg.dir.join(format!("exec-{exec}.{ext}")));
        }
        Ok(Response::Exited { exit })
    }

    fn delete(&self) -> Result<Response, Failure> {
        let exit = {
            let st = self.lock();
            match &st.init {
                Some(p) if p.exit.is_none() && p.status != Status::Created => {
                    return Err(Failure::new(
                        ErrorKind::FailedPrecondition,
                        "task must be stopped before deletion",
                    ));
                }
                Some(p) => p.exit.unwrap_or(Exit {
                    status: 0,
                    at: now_nanos(),
                }),
                None => Exit {
                    status: 0,
                    at: now_nanos(),
                },
            }
        };
        // Nobody reaches this shim from now on; the path is free for the next task of this id.
        let _ = std::fs::remove_file(&self.cfg.socket);
        Ok(Response::Exited { exit })
    }

    /// After a Delete was answered: removes runc's state of the container (`runc delete`,
    /// off the caller's path: a new task of the same id waits until runc's state directory
    /// is gone) and ends the shim.
    pub fn finish(&self) {
        let _ = self
            .runc
            .run(&["delete", "--force", &self.cfg.id], Streams::null(), false);
        std::process::exit(0);
    }
}
