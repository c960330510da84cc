//! `containerd.services.tasks.v1.Tasks` over the runtime's tasks (runc under a shim per task).

use std::time::{Duration, SystemTime};

use strata_runtime::{CreateTask, Exit, Process, Runtime, Status as TaskStatus, Stdio};
use tonic::{Request, Response, Status};

use super::convert::{any_from_proto, blocking, ctx, mounts, on_own_thread, timestamp};
use crate::api::task_types as tt;
use crate::api::tasks::tasks_server::Tasks;
use crate::api::tasks::*;
use crate::stopping::Stopping;

#[derive(Clone)]
pub struct TasksService {
    rt: Runtime,
    stopping: Stopping,
}

impl TasksService {
    pub fn new(rt: Runtime, stopping: Stopping) -> Self {
        TasksService { rt, stopping }
    }
}

/// The exec id of a request: empty means the init process.
fn exec_of(id: &str) -> Option<String> {
    (!id.is_empty()).then(|| id.to_string())
}

pub(crate) fn exited_at(e: &Exit) -> Option<prost_types::Timestamp> {
    let at = SystemTime::UNIX_EPOCH + Duration::from_nanos(e.at.max(0) as u64);
    timestamp(at)
}

fn status(s: TaskStatus) -> tt::Status {
    match s {
        TaskStatus::Created => tt::Status::Created,
        TaskStatus::Running => tt::Status::Running,
        TaskStatus::Paused => tt::Status::Paused,
        TaskStatus::Stopped => tt::Status::Stopped,
    }
}

fn process(p: Process) -> tt::Process {
    tt::Process {
        container_id: p.container_id,
        id: p.id,
        pid: p.pid,
        status: status(p.status) as i32,
        stdin: p.stdio.stdin,
        stdout: p.stdio.stdout,
        stderr: p.stdio.stderr,
        terminal: p.stdio.terminal,
        exit_status: p.exit.map_or(0, |e| e.status),
        exited_at: p.exit.as_ref().and_then(exited_at),
    }
}

fn unsupported(what: &str) -> Status {
    Status::unimplemented(format!("{what} is not supported by strata"))
}

#[tonic::async_trait]
impl Tasks for TasksService {
    async fn create(
        &self,
        req: Request<CreateTaskRequest>,
    ) -> Result<Response<CreateTaskResponse>, Status> {
        let (c, rt, r) = (ctx(req.metadata())?, self.rt.clone(), req.into_inner());
        if r.checkpoint.is_some() {
            return Err(unsupported("restoring a checkpoint"));
        }
        let id = r.container_id.clone();
        let create = CreateTask {
            container_id: r.container_id,
            rootfs: mounts(r.rootfs),
            stdio: Stdio {
                stdin: r.stdin,
                stdout: r.stdout,
                stderr: r.stderr,
                terminal: r.terminal,
            },
        };
        let pid = blocking(move || rt.tasks().create(&c, create)).await?;
        Ok(Response::new(CreateTaskResponse {
            container_id: id,
            pid,
        }))
    }

    async fn start(&self, req: Request<StartRequest>) -> Result<Response<StartResponse>, Status> {
        let (c, rt, r) = (ctx(req.metadata())?, self.rt.clone(), req.into_inner());
        let pid = blocking(move || {
            rt.tasks()
                .start(&c, &r.container_id, exec_of(&r.exec_id).as_deref())
        })
        .await?;
        Ok(Response::new(StartResponse { pid }))
    }

    async fn delete(
        &self,
        req: Request<DeleteTaskRequest>,
    ) -> Result<Response<DeleteResponse>, Status> {
        let (c, rt, r) = (ctx(req.metadata())?, self.rt.clone(), req.into_inner());
        let id = r.container_id.clone();
        let (pid, exit) = blocking(move || rt.tasks().delete(&c, &r.container_id)).await?;
        Ok(Response::new(DeleteResponse {
            id,
            pid,
            exit_status: exit.status,
            exited_at: exited_at(&exit),
        }))
    }

    async fn delete_process(
        &self,
        req: Request<DeleteProcessRequest>,
    ) -> Result<Response<DeleteResponse>, Status> {
        let (c, rt, r) = (ctx(req.metadata())?, self.rt.clone(), req.into_inner());
        if r.exec_id.is_empty() {
            return Err(Status::invalid_argument(
                "delete the init process with Delete, not DeleteProcess",
            ));
        }
        let id = r.exec_id.clone();
        let (pid, exit) =
            blocking(move || rt.tasks().delete_process(&c, &r.container_id, &r.exec_id)).await?;
        Ok(Response::new(DeleteResponse {
            id,
            pid,
            exit_status: exit.status,
            exited_at: exited_at(&exit),
        }))
    }

    async fn get(&self, req: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        let (c, rt, r) = (ctx(req.metadata())?, self.rt.clone(), req.into_inner());
        let p = blocking(move || {
            rt.tasks()
                .get(&c, &r.container_id, exec_of(&r.exec_id).as_deref())
        })
        .await?;
        Ok(Response::new(GetResponse {
            process: Some(process(p)),
        }))
    }

    async fn list(
        &self,
        req: Request<ListTasksRequest>,
    ) -> Result<Response<ListTasksResponse>, Status> {
        // containerd 1.6 ignores the filter too.
        let (c, rt) = (ctx(req.metadata())?, self.rt.clone());
        let ps = blocking(move || rt.tasks().list(&c)).await?;
        Ok(Response::new(ListTasksResponse {
            tasks: ps.into_iter().map(process).collect(),
        }))
    }

    async fn kill(&self, req: Request<KillRequest>) -> Result<Response<()>, Status> {
        let (c, rt, r) = (ctx(req.metadata())?, self.rt.clone(), req.into_inner());
        blocking(move || {
            let exec = exec_of(&r.exec_id);
            rt.tasks()
                .kill(&c, &r.container_id, exec.as_deref(), r.signal, r.all)
        })
        .await?;
        Ok(Response::new(()))
    }

    async fn exec(&self, req: Request<ExecProcessRequest>) -> Result<Response<()>, Status> {
        let (c, rt, r) = (ctx(req.metadata())?, self.rt.clone(), req.into_inner());
        let stdio = Stdio {
            stdin: r.stdin,
            stdout: r.stdout,
            stderr: r.stderr,
            terminal: r.terminal,
        };
        let spec = r.spec.map(any_from_proto);
        blocking(move || {
            rt.tasks()
                .exec(&c, &r.container_id, &r.exec_id, spec.as_ref(), stdio)
        })
        .await?;
        Ok(Response::new(()))
    }

    async fn resize_pty(&self, req: Request<ResizePtyRequest>) -> Result<Response<()>, Status> {
        let (c, rt, r) = (ctx(req.metadata())?, self.rt.clone(), req.into_inner());
        let (w, h) = (
            u16::try_from(r.width).unwrap_or(u16::MAX),
            u16::try_from(r.height).unwrap_or(u16::MAX),
        );
        blocking(move || {
            let exec = exec_of(&r.exec_id);
            rt.tasks()
                .resize(&c, &r.container_id, exec.as_deref(), w, h)
        })
        .await?;
        Ok(Response::new(()))
    }

    async fn close_io(&self, req: Request<CloseIoRequest>) -> Result<Response<()>, Status> {
        let (c, rt, r) = (ctx(req.metadata())?, self.rt.clone(), req.into_inner());
        if r.stdin {
            blocking(move || {
                let exec = exec_of(&r.exec_id);
                rt.tasks().close_stdin(&c, &r.container_id, exec.as_deref())
            })
            .await?;
        }
        Ok(Response::new(()))
    }

    async fn pause(&self, req: Request<PauseTaskRequest>) -> Result<Response<()>, Status> {
        let (c, rt, r) = (ctx(req.metadata())?, self.rt.clone(), req.into_inner());
        blocking(move || rt.tasks().pause(&c, &r.container_id)).await?;
        Ok(Response::new(()))
    }

    async fn resume(&self, req: Request<ResumeTaskRequest>) -> Result<Response<()>, Status> {
        let (c, rt, r) = (ctx(req.metadata())?, self.rt.clone(), req.into_inner());
        blocking(move || rt.tasks().resume(&c, &r.container_id)).await?;
        Ok(Response::new(()))
    }

    async fn list_pids(
        &self,
        req: Request<ListPidsRequest>,
    ) -> Result<Response<ListPidsResponse>, Status> {
        let (c, rt, r) = (ctx(req.metadata())?, self.rt.clone(), req.into_inner());
        let pids = blocking(move || rt.tasks().pids(&c, &r.container_id)).await?;
        Ok(Response::new(ListPidsResponse {
            processes: pids
                .into_iter()
                .map(|pid| tt::ProcessInfo { pid, info: None })
                .collect(),
        }))
    }

    async fn checkpoint(
        &self,
        _req: Request<CheckpointTaskRequest>,
    ) -> Result<Response<CheckpointTaskResponse>, Status> {
        Err(unsupported("checkpointing a task"))
    }

    async fn update(&self, _req: Request<UpdateTaskRequest>) -> Result<Response<()>, Status> {
        Err(unsupported("updating a task's resources"))
    }

    async fn metrics(
        &self,
        _req: Request<MetricsRequest>,
    ) -> Result<Response<MetricsResponse>, Status> {
        Err(unsupported("task metrics"))
    }

    async fn wait(&self, req: Request<WaitRequest>) -> Result<Response<WaitResponse>, Status> {
        let (c, rt, r) = (ctx(req.metadata())?, self.rt.clone(), req.into_inner());
        let waiting = on_own_thread("task-wait", move || {
            rt.tasks()
                .wait(&c, &r.container_id, exec_of(&r.exec_id).as_deref())
        });
        // A container may outlive the daemon: a shutdown ends the wait, not the other way round.
        let exit = tokio::select! {
            exit = waiting => exit?,
            _ = self.stopping.clone().wait() => return Err(crate::stopping::unavailable()),
        };
        Ok(Response::new(WaitResponse {
            exit_status: exit.status,
            exited_at: exited_at(&exit),
        }))
    }
}
