//! Tasks: a container's processes, run by `runc` under a per-task shim ([`strata_shim`]).
//!
//! Lifecycle, as `ctr run --rm` drives it through the runtime socket:
//!
//! ```text
//! create(c1, rootfs = snapshots.mounts(c1), stdio fifos) // bundle + rootfs mount + shim + runc create
//! wait(c1)                                               // held until the init process exits
//! start(c1)                                              // runc start: the process runs
//! ... /tasks/exit published, wait(c1) answers 3 ...
//! delete(c1) -> exit status 3                            // runc delete, unmount, bundle removed
//! ```
//!
//! Each task lives in `<state>/tasks/<namespace>/<id>` with a record (`task.json`); its shim is
//! a separate process in its own session, so neither a daemon restart nor a `kill -9` of the
//! daemon touches the container. On start the runtime finds every record, reconnects to the
//! shims that answer and reports the others' last exit (or 255, containerd's unknown status).

mod bundle;
mod events;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use strata_core::identifiers;
use strata_shim::client::{Error as ShimError, Launch, Shim};
use strata_shim::protocol::{ErrorKind, Request, Response};
use strata_snapshotters::Mount;

pub use events::TaskEvent;
pub use strata_shim::protocol::{Exit, Status, Stdio};

use crate::{AnyValue, Ctx, Error, Event, Result, Runtime};
use bundle::Paths;

/// containerd's exit status for a process whose end nobody saw.
pub const UNKNOWN_EXIT_STATUS: u32 = 255;

/// Runtime names whose containers Strata runs (through runc).
pub const RUNTIMES: &[&str] = &[
    "io.containerd.runc.v2",
    "io.containerd.runc.v1",
    "io.containerd.runtime.v1.linux",
];

/// Where tasks live and what runs them.
#[derive(Debug, Clone)]
pub struct TaskConfig {
    /// State root (on a tmpfs: tasks do not survive a reboot).
    pub state: PathBuf,
    /// The `strata-shim` binary.
    pub shim: PathBuf,
    /// The `runc` binary.
    pub runc: PathBuf,
}

impl Default for TaskConfig {
    /// `/run/strata/state`, the `strata-shim` beside the running binary, `runc` from `PATH`.
    fn default() -> Self {
        let shim = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("strata-shim")))
            .filter(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from("strata-shim"));
        TaskConfig {
            state: PathBuf::from("/run/strata/state"),
            shim,
            runc: PathBuf::from("runc"),
        }
    }
}

/// A process of a task, as `Get` and `List` report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub container_id: String,
    /// The exec id; the container id for the init process.
    pub id: String,
    pub pid: u32,
    pub status: Status,
    pub stdio: Stdio,
    pub exit: Option<Exit>,
}

/// What `create` needs beyond the container record.
#[derive(Debug, Clone, Default)]
pub struct CreateTask {
    pub container_id: String,
    /// The rootfs mounts (the client reads them from the container's snapshot).
    pub rootfs: Vec<Mount>,
    pub stdio: Stdio,
}

/// Strata's record of a task (`task.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    namespace: String,
    id: String,
    pid: u32,
    stdio: Stdio,
    snapshotter: String,
    snapshot_key: String,
}

struct Entry {
    rec: Record,
    paths: Paths,
    shim: Shim,
    /// Whether the init process's exit watcher runs (from Start on: no exit before its start).
    watching: AtomicBool,
    /// Processes whose `/tasks/exit` went out ("" for init): the watcher and DeleteProcess
    /// may both see an exit, the event goes once.
    exited: Mutex<HashSet<String>>,
}

impl Entry {
    fn new(rec: Record, paths: Paths, shim: Shim) -> Entry {
        Entry {
            rec,
            paths,
            shim,
            watching: AtomicBool::new(false),
            exited: Mutex::default(),
        }
    }

    /// Publishes the exit of a process once.
    fn publish_exit(&self, rt: &Runtime, exec: Option<&str>, pid: u32, exit: Exit) {
        let key = exec.unwrap_or_default().to_string();
        // Published under the lock: whoever publishes second (Delete's /tasks/delete) comes after.
        let mut exited = self.exited.lock().unwrap_or_else(|p| p.into_inner());
        if !exited.insert(key) {
            return;
        }
        let event = TaskEvent::Exit {
            container_id: self.rec.id.clone(),
            id: exec.unwrap_or(&self.rec.id).to_string(),
            pid,
            exit,
        };
        rt.publish(&self.rec.namespace, Event::Task(event));
        drop(exited);
    }

    /// Starts the init process's exit watcher unless it runs.
    fn watch_init(self: &Arc<Self>, rt: &Runtime) {
        if !self.watching.swap(true, Ordering::SeqCst) {
            watch(rt.clone(), self.clone(), None, self.rec.pid);
        }
    }
}

/// The tasks of every namespace (one per runtime).
pub(crate) struct Manager {
    cfg: TaskConfig,
    tasks: Mutex<HashMap<(String, String), Arc<Entry>>>,
}

fn shim_error(what: &str, e: ShimError) -> Error {
    match e {
        ShimError::Shim { kind, message } => {
            let m = format!("{what}: {message}");
            match kind {
                ErrorKind::NotFound => Error::NotFound(m),
                ErrorKind::AlreadyExists => Error::AlreadyExists(m),
                ErrorKind::FailedPrecondition => Error::FailedPrecondition(m),
                ErrorKind::InvalidArgument => Error::InvalidArgument(m),
                ErrorKind::Internal => Error::Internal(m),
            }
        }
        other => Error::Internal(format!("{what}: {other}")),
    }
}

fn unexpected(what: &str, r: &Response) -> Error {
    Error::Internal(format!("{what}: unexpected answer from the shim: {r:?}"))
}

impl Manager {
    pub fn new(cfg: TaskConfig) -> Manager {
        Manager {
            cfg,
            tasks: Mutex::default(),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Arc<Entry>>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn entry(&self, ns: &str, id: &str) -> Result<Arc<Entry>> {
        self.map()
            .get(&(ns.to_string(), id.to_string()))
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("task {id:?}: not found")))
    }

    /// Whether container `id` of `ns` has a task.
    pub fn has(&self, ns: &str, id: &str) -> bool {
        self.map().contains_key(&(ns.to_string(), id.to_string()))
    }

    /// The task whose rootfs is snapshot `key` of backend `snapshotter` in `ns`, if any.
    pub fn using_snapshot(&self, ns: &str, snapshotter: &str, key: &str) -> Option<String> {
        self.map()
            .values()
            .find(|e| {
                e.rec.namespace == ns
                    && e.rec.snapshotter == snapshotter
                    && e.rec.snapshot_key == key
            })
            .map(|e| e.rec.id.clone())
    }

    /// Finds the tasks recorded under the state root (after a restart) and watches them.
    pub fn recover(&self, rt: &Runtime) {
        let root = self.cfg.state.join("tasks");
        let Ok(namespaces) = std::fs::read_dir(&root) else {
            return;
        };
        for ns in namespaces.flatten() {
            let Ok(ids) = std::fs::read_dir(ns.path()) else {
                continue;
            };
            for id in ids.flatten() {
                let file = id.path().join("task.json");
                let rec = std::fs::read(&file)
                    .map_err(|e| e.to_string())
                    .and_then(|b| serde_json::from_slice::<Record>(&b).map_err(|e| e.to_string()));
                let rec = rec.and_then(|r| {
                    if r.pid == 0 {
                        Err("its init process was never created".to_string())
                    } else {
                        Ok(r)
                    }
                });
                match rec {
                    Ok(rec) => self.adopt(rt, rec),
                    Err(e) => {
                        // A create that never finished: nothing runs there (its shim, if any,
                        // is told to go) and the bundle is removed.
                        let (ns, id) = (ns.file_name(), id.file_name());
                        let p = Paths::new(
                            &self.cfg.state,
                            &ns.to_string_lossy(),
                            &id.to_string_lossy(),
                        );
                        tracing::warn!(task = %p.dir.display(), error = %e, "removing an unfinished task");
                        let _ = Shim::at(&p.socket).call(&Request::Delete);
                        if let Err(e) = bundle::remove(&p) {
                            tracing::warn!(error = %e, "cannot remove an unfinished task");
                        }
                    }
                }
            }
        }
    }

    fn adopt(&self, rt: &Runtime, rec: Record) {
        let paths = Paths::new(&self.cfg.state, &rec.namespace, &rec.id);
        let shim = Shim::at(&paths.socket);
        let alive = shim.alive();
        tracing::info!(namespace = %rec.namespace, id = %rec.id, pid = rec.pid, alive, "recovered task");
        let e = Arc::new(Entry::new(rec, paths, shim));
        self.map()
            .insert((e.rec.namespace.clone(), e.rec.id.clone()), e.clone());
        if alive {
            e.watch_init(rt);
        }
    }

    fn record(&self, e: &Entry) -> Result<()> {
        let file = e.paths.record();
        let tmp = file.with_extension("json.tmp");
        let body = serde_json::to_vec(&e.rec).expect("records serialise");
        std::fs::write(&tmp, body)
            .and_then(|()| std::fs::rename(&tmp, &file))
            .map_err(|err| Error::Internal(format!("writing {}: {err}", file.display())))
    }
}

/// Waits (on its own thread) for the exit of process `pid` and publishes `/tasks/exit`.
fn watch(rt: Runtime, e: Arc<Entry>, exec: Option<String>, pid: u32) {
    let spawned = std::thread::Builder::new()
        .name("task-exit".into())
        .spawn(move || {
            // A failed Wait (the exec was deleted first, the shim is gone) publishes nothing:
            // DeleteProcess and Delete publish the exit they see.
            if let Ok(Response::Exited { exit }) =
                e.shim.call(&Request::Wait { exec: exec.clone() })
            {
                e.publish_exit(&rt, exec.as_deref(), pid, exit);
            }
        });
    if let Err(err) = spawned {
        tracing::error!(error = %err, "cannot watch a task for its exit");
    }
}

/// The tasks of a namespace: containerd's Tasks service. Every call blocks (runc runs under
/// it): call from a blocking thread.
#[derive(Clone)]
pub struct Tasks {
    rt: Runtime,
}

impl Tasks {
    pub(crate) fn new(rt: Runtime) -> Self {
        Tasks { rt }
    }

    fn manager(&self) -> &Manager {
        self.rt.task_manager()
    }

    /// Creates the task of container `req.container_id`: its bundle, rootfs and init process
    /// (created, not started). Returns the init pid.
    pub fn create(&self, ctx: &Ctx, req: CreateTask) -> Result<u32> {
        let m = self.manager();
        let c = self.rt.containers().get(ctx, &req.container_id)?;
        if !RUNTIMES.contains(&c.runtime.name.as_str()) {
            return Err(Error::NotFound(format!(
                "runtime {:?} of container {:?} is not supported: Strata runs {}",
                c.runtime.name,
                c.id,
                RUNTIMES.join(", ")
            )));
        }
        let spec = bundle::spec_json(&c.id, c.spec.as_ref())?;
        let key = (ctx.namespace.clone(), c.id.clone());
        let paths = Paths::new(&m.cfg.state, &ctx.namespace, &c.id);
        let rec = Record {
            namespace: ctx.namespace.clone(),
            id: c.id.clone(),
            pid: 0,
            stdio: req.stdio.clone(),
            snapshotter: if c.snapshot_key.is_empty() {
                String::new()
            } else {
                self.rt.canonical_snapshotter(&c.snapshotter)
            },
            snapshot_key: c.snapshot_key.clone(),
        };
        let placeholder = Arc::new(Entry::new(rec, paths.clone(), Shim::at(&paths.socket)));
        {
            let mut map = m.map();
            if map.contains_key(&key) {
                return Err(Error::AlreadyExists(format!(
                    "task {:?}: already exists",
                    c.id
                )));
            }
            map.insert(key.clone(), placeholder.clone());
        }
        let created = self.create_in(m, &placeholder, &spec, &req);
        let entry = match created {
            Ok(e) => e,
            Err(err) => {
                let _ = placeholder.shim.call(&Request::Delete);
                if let Err(e) = bundle::remove(&paths) {
                    tracing::warn!(error = %e, "cannot clean up a failed task");
                }
                m.map().remove(&key);
                return Err(err);
            }
        };
        m.map().insert(key, entry.clone());
        self.rt.publish(
            &ctx.namespace,
            Event::Task(TaskEvent::Create {
                container_id: c.id.clone(),
                bundle: paths.dir.display().to_string(),
                rootfs: req.rootfs,
                stdio: req.stdio,
                pid: entry.rec.pid,
            }),
        );
        Ok(entry.rec.pid)
    }

    fn create_in(
        &self,
        m: &Manager,
        e: &Entry,
        spec: &[u8],
        req: &CreateTask,
    ) -> Result<Arc<Entry>> {
        let t0 = std::time::Instant::now();
        self.await_runc_state_gone(e);
        bundle::create(&e.paths, spec, &req.rootfs)?;
        // The record first: a daemon that dies from here on finds the task on restart.
        m.record(e)?;
        let t_bundle = t0.elapsed();
        let shim = Shim::start(&Launch {
            binary: m.cfg.shim.clone(),
            dir: e.paths.dir.clone(),
            socket: e.paths.socket.clone(),
            id: e.rec.id.clone(),
            runc_root: e.paths.runc_root.clone(),
            runc: m.cfg.runc.clone(),
        })
        .map_err(|err| Error::Internal(format!("task {:?}: starting its shim: {err}", e.rec.id)))?;
        let t_shim = t0.elapsed();
        let what = format!("task {:?}", e.rec.id);
        let pid = match shim.call(&Request::Create {
            stdio: req.stdio.clone(),
        }) {
            Ok(Response::Pid { pid }) => pid,
            Ok(r) => return Err(unexpected(&what, &r)),
            Err(err) => return Err(shim_error(&what, err)),
        };
        let entry = Entry::new(
            Record {
                pid,
                ..e.rec.clone()
            },
            e.paths.clone(),
            shim,
        );
        m.record(&entry)?;
        tracing::debug!(
            id = %e.rec.id,
            bundle_us = t_bundle.as_micros() as u64,
            shim_us = (t_shim - t_bundle).as_micros() as u64,
            runc_create_us = (t0.elapsed() - t_shim).as_micros() as u64,
            "task created"
        );
        Ok(Arc::new(entry))
    }

    fn call(&self, e: &Entry, what: &str, req: Request) -> Result<Response> {
        e.shim.call(&req).map_err(|err| shim_error(what, err))
    }

    /// Starts the init process (`exec` None) or an exec process; returns its pid.
    pub fn start(&self, ctx: &Ctx, id: &str, exec: Option<&str>) -> Result<u32> {
        let e = self.manager().entry(&ctx.namespace, id)?;
        let what = describe(id, exec);
        let pid = match self.call(
            &e,
            &what,
            Request::Start {
                exec: exec.map(str::to_string),
            },
        )? {
            Response::Pid { pid } => pid,
            r => return Err(unexpected(&what, &r)),
        };
        // The start event first, then the watcher: an exit is never published before its start.
        match exec {
            None => {
                let event = TaskEvent::Start {
                    container_id: id.into(),
                    pid,
                };
                self.rt.publish(&ctx.namespace, Event::Task(event));
                e.watch_init(&self.rt);
            }
            Some(x) => {
                let event = TaskEvent::ExecStarted {
                    container_id: id.into(),
                    exec_id: x.into(),
                    pid,
                };
                self.rt.publish(&ctx.namespace, Event::Task(event));
                // A new process under a reused exec id has its own exit to publish.
                e.exited.lock().unwrap_or_else(|p| p.into_inner()).remove(x);
                watch(self.rt.clone(), e.clone(), Some(x.to_string()), pid);
            }
        }
        Ok(pid)
    }

    /// The state of the init process or an exec process.
    pub fn get(&self, ctx: &Ctx, id: &str, exec: Option<&str>) -> Result<Process> {
        let e = self.manager().entry(&ctx.namespace, id)?;
        self.process(&e, exec)
    }

    fn process(&self, e: &Entry, exec: Option<&str>) -> Result<Process> {
        let what = describe(&e.rec.id, exec);
        let req = Request::State {
            exec: exec.map(str::to_string),
        };
        match e.shim.call(&req) {
            Ok(Response::State { state }) => Ok(Process {
                container_id: e.rec.id.clone(),
                id: exec.unwrap_or(&e.rec.id).to_string(),
                pid: state.pid,
                status: state.status,
                stdio: state.stdio,
                exit: state.exit,
            }),
            Ok(r) => Err(unexpected(&what, &r)),
            Err(ShimError::Unreachable { .. }) if exec.is_none() => Ok(Process {
                container_id: e.rec.id.clone(),
                id: e.rec.id.clone(),
                pid: e.rec.pid,
                status: Status::Stopped,
                stdio: e.rec.stdio.clone(),
                exit: Some(last_exit(&e.paths)),
            }),
            Err(err) => Err(shim_error(&what, err)),
        }
    }

    /// The init processes of the namespace's tasks.
    pub fn list(&self, ctx: &Ctx) -> Result<Vec<Process>> {
        let mut entries: Vec<Arc<Entry>> = self
            .manager()
            .map()
            .values()
            .filter(|e| e.rec.namespace == ctx.namespace && e.rec.pid != 0)
            .cloned()
            .collect();
        entries.sort_by(|a, b| a.rec.id.cmp(&b.rec.id));
        entries.iter().map(|e| self.process(e, None)).collect()
    }

    /// Sends `signal` to a process (`all`: every process of the task).
    pub fn kill(
        &self,
        ctx: &Ctx,
        id: &str,
        exec: Option<&str>,
        signal: u32,
        all: bool,
    ) -> Result<()> {
        let e = self.manager().entry(&ctx.namespace, id)?;
        if exec.is_none() {
            // A created task killed before its start still reports its exit.
            e.watch_init(&self.rt);
        }
        let req = Request::Kill {
            exec: exec.map(str::to_string),
            signal,
            all,
        };
        self.call(&e, &describe(id, exec), req).map(drop)
    }

    /// Adds exec process `exec` (not started) running `spec` (a runtime-spec Process).
    pub fn exec(
        &self,
        ctx: &Ctx,
        id: &str,
        exec: &str,
        spec: Option<&AnyValue>,
        stdio: Stdio,
    ) -> Result<()> {
        identifiers::validate(exec)
            .map_err(|e| Error::InvalidArgument(format!("exec id: {}", e.0)))?;
        let spec = bundle::process_json(exec, spec)?;
        let e = self.manager().entry(&ctx.namespace, id)?;
        let req = Request::Exec {
            exec: exec.into(),
            spec,
            stdio,
        };
        self.call(&e, &describe(id, Some(exec)), req)?;
        self.rt.publish(
            &ctx.namespace,
            Event::Task(TaskEvent::ExecAdded {
                container_id: id.into(),
                exec_id: exec.into(),
            }),
        );
        Ok(())
    }

    /// Waits for a process to exit; returns how it ended.
    pub fn wait(&self, ctx: &Ctx, id: &str, exec: Option<&str>) -> Result<Exit> {
        let e = self.manager().entry(&ctx.namespace, id)?;
        let what = describe(id, exec);
        match e.shim.call(&Request::Wait {
            exec: exec.map(str::to_string),
        }) {
            Ok(Response::Exited { exit }) => Ok(exit),
            Ok(r) => Err(unexpected(&what, &r)),
            Err(ShimError::Unreachable { .. }) if exec.is_none() => Ok(last_exit(&e.paths)),
            Err(err) => Err(shim_error(&what, err)),
        }
    }

    pub fn pause(&self, ctx: &Ctx, id: &str) -> Result<()> {
        let e = self.manager().entry(&ctx.namespace, id)?;
        self.call(&e, &describe(id, None), Request::Pause)?;
        self.rt.publish(
            &ctx.namespace,
            Event::Task(TaskEvent::Paused {
                container_id: id.into(),
            }),
        );
        Ok(())
    }

    pub fn resume(&self, ctx: &Ctx, id: &str) -> Result<()> {
        let e = self.manager().entry(&ctx.namespace, id)?;
        self.call(&e, &describe(id, None), Request::Resume)?;
        self.rt.publish(
            &ctx.namespace,
            Event::Task(TaskEvent::Resumed {
                container_id: id.into(),
            }),
        );
        Ok(())
    }

    /// The pids of the task's processes.
    pub fn pids(&self, ctx: &Ctx, id: &str) -> Result<Vec<u32>> {
        let e = self.manager().entry(&ctx.namespace, id)?;
        match self.call(&e, &describe(id, None), Request::Pids)? {
            Response::Pids { pids } => Ok(pids),
            r => Err(unexpected(id, &r)),
        }
    }

    /// Closes a process's stdin: it reads end of file.
    pub fn close_stdin(&self, ctx: &Ctx, id: &str, exec: Option<&str>) -> Result<()> {
        let e = self.manager().entry(&ctx.namespace, id)?;
        let req = Request::CloseIo {
            exec: exec.map(str::to_string),
        };
        self.call(&e, &describe(id, exec), req).map(drop)
    }

    pub fn resize(
        &self,
        ctx: &Ctx,
        id: &str,
        exec: Option<&str>,
        width: u16,
        height: u16,
    ) -> Result<()> {
        let e = self.manager().entry(&ctx.namespace, id)?;
        let req = Request::Resize {
            exec: exec.map(str::to_string),
            width,
            height,
        };
        self.call(&e, &describe(id, exec), req).map(drop)
    }

    /// Forgets an exited exec process; returns its pid and exit.
    pub fn delete_process(&self, ctx: &Ctx, id: &str, exec: &str) -> Result<(u32, Exit)> {
        let e = self.manager().entry(&ctx.namespace, id)?;
        let pid = self.process(&e, Some(exec))?.pid;
        let what = describe(id, Some(exec));
        // No /tasks/delete: containerd publishes it for init processes only. The exit goes out
        // here if the watcher has not published it yet (it may lose the race to this call).
        match self.call(&e, &what, Request::DeleteProcess { exec: exec.into() })? {
            Response::Exited { exit } => {
                if pid != 0 {
                    e.publish_exit(&self.rt, Some(exec), pid, exit);
                }
                Ok((pid, exit))
            }
            r => Err(unexpected(&what, &r)),
        }
    }

    /// Deletes a stopped (or never started) task: runc's state, the rootfs mount and the
    /// bundle. Returns the init pid and exit.
    pub fn delete(&self, ctx: &Ctx, id: &str) -> Result<(u32, Exit)> {
        let m = self.manager();
        let e = m.entry(&ctx.namespace, id)?;
        let what = describe(id, None);
        let t0 = std::time::Instant::now();
        let exit = match e.shim.call(&Request::Delete) {
            Ok(Response::Exited { exit }) => exit,
            Ok(r) => return Err(unexpected(&what, &r)),
            Err(ShimError::Unreachable { .. }) => {
                self.runc_delete(&e);
                last_exit(&e.paths)
            }
            Err(err) => return Err(shim_error(&what, err)),
        };
        // The exit before /tasks/delete (publish_exit returns once any publication of it,
        // here or by the watcher, is out).
        if e.watching.load(Ordering::SeqCst) {
            e.publish_exit(&self.rt, None, e.rec.pid, exit);
        }
        let t_shim = t0.elapsed();
        bundle::remove(&e.paths)?;
        tracing::debug!(
            id,
            shim_us = t_shim.as_micros() as u64,
            bundle_us = (t0.elapsed() - t_shim).as_micros() as u64,
            "task deleted"
        );
        m.map().remove(&(ctx.namespace.clone(), id.to_string()));
        self.rt.publish(
            &ctx.namespace,
            Event::Task(TaskEvent::Delete {
                container_id: id.into(),
                id: String::new(),
                pid: e.rec.pid,
                exit,
            }),
        );
        Ok((e.rec.pid, exit))
    }

    /// Waits until runc's state of an earlier task of this id is gone: a deleted task's shim
    /// removes it after answering (`runc delete`, a few milliseconds). What is still there
    /// after 5 s (a crash left it) is removed here.
    fn await_runc_state_gone(&self, e: &Entry) {
        let state = e.paths.runc_root.join(&e.rec.id);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while state.exists() {
            if std::time::Instant::now() > deadline {
                tracing::warn!(id = %e.rec.id, "removing runc state left by an earlier task");
                self.runc_delete(e);
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    /// `runc delete --force` for a task whose shim is gone.
    fn runc_delete(&self, e: &Entry) {
        let out = std::process::Command::new(&self.manager().cfg.runc)
            .arg("--root")
            .arg(&e.paths.runc_root)
            .args(["delete", "--force", &e.rec.id])
            .output();
        if let Ok(o) = out
            && !o.status.success()
        {
            tracing::debug!(id = %e.rec.id, stderr = %String::from_utf8_lossy(&o.stderr), "runc delete");
        }
    }
}

/// How a process without a shim ended: its exit file, or containerd's unknown status.
fn last_exit(p: &Paths) -> Exit {
    std::fs::read(p.dir.join("init.exit"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Exit {
            status: UNKNOWN_EXIT_STATUS,
            at: 0,
        })
}

fn describe(id: &str, exec: Option<&str>) -> String {
    match exec {
        None => format!("task {id:?}"),
        Some(x) => format!("task {id:?} exec {x:?}"),
    }
}
