//! The runtime socket's Tasks service over gRPC with real runc: the lifecycle of a task and
//! of an exec process, the exact gRPC code of every refusal (as containerd's), and a task that
//! keeps running across a `kill -9` of the daemon and reports its real exit status after.
//!
//! Needs root, `runc` and `/bin/busybox` (scripts/test installs them): without them these
//! tests fail and say why, never pass.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::rt::Rt;
use common::*;
use strata_proxy::api::containers::{
    Container, CreateContainerRequest, DeleteContainerRequest, container,
};
use strata_proxy::api::task_types::Status as TaskStatus;
use strata_proxy::api::tasks::tasks_client::TasksClient;
use strata_proxy::api::tasks::*;
use tonic::Code;
use tonic::transport::Channel;

fn require_environment() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "runtime_tasks runs containers: it needs root"
    );
    let runc = std::process::Command::new("runc").arg("--version").output();
    assert!(
        runc.is_ok_and(|o| o.status.success()),
        "runtime_tasks needs runc in PATH (apt-get install runc)"
    );
    assert!(
        Path::new("/bin/busybox").exists(),
        "runtime_tasks needs /bin/busybox (apt-get install busybox-static)"
    );
}

/// A root filesystem with busybox as `sh`, `sleep`, `true` and `cat`.
fn rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    for a in ["sh", "sleep", "true", "cat"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).unwrap();
    }
    for d in ["proc", "dev", "sys"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    root
}

/// runc's default spec (`runc spec`), without a terminal, running `args` on `root`.
fn spec(dir: &Path, root: &Path, args: &[&str]) -> Vec<u8> {
    let tmp = dir.join("spec-gen");
    std::fs::create_dir_all(&tmp).unwrap();
    let _ = std::fs::remove_file(tmp.join("config.json"));
    let st = std::process::Command::new("runc")
        .args(["spec", "--bundle"])
        .arg(&tmp)
        .status()
        .unwrap();
    assert!(st.success(), "runc spec");
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.join("config.json")).unwrap()).unwrap();
    v["process"]["terminal"] = false.into();
    v["process"]["args"] = args.iter().map(|a| serde_json::Value::from(*a)).collect();
    v["root"]["path"] = root.display().to_string().into();
    v["root"]["readonly"] = true.into();
    serde_json::to_vec(&v).unwrap()
}

struct Env {
    rt: Rt,
    dir: PathBuf,
    root: PathBuf,
}

impl Env {
    fn tasks(&self) -> TasksClient<Channel> {
        TasksClient::new(self.rt.ch.clone())
    }

    async fn container(&self, id: &str, runtime: &str, spec: Vec<u8>) {
        let c = Container {
            id: id.into(),
            runtime: Some(container::Runtime {
                name: runtime.into(),
                options: None,
            }),
            spec: Some(prost_types::Any {
                type_url: "types.containerd.io/opencontainers/runtime-spec/1/Spec".into(),
                value: spec,
            }),
            ..Container::default()
        };
        let req = self
            .rt
            .req(CreateContainerRequest { container: Some(c) }, None);
        self.rt.containers().create(req).await.unwrap();
    }

    async fn runc_container(&self, id: &str, args: &[&str]) {
        let s = spec(&self.dir, &self.root, args);
        self.container(id, "io.containerd.runc.v2", s).await;
    }

    async fn create(&self, id: &str) -> Result<u32, tonic::Status> {
        let req = self.rt.req(
            CreateTaskRequest {
                container_id: id.into(),
                ..Default::default()
            },
            None,
        );
        self.tasks().create(req).await.map(|r| r.into_inner().pid)
    }

    async fn start(&self, id: &str, exec: &str) -> Result<u32, tonic::Status> {
        let req = self.rt.req(
            StartRequest {
                container_id: id.into(),
                exec_id: exec.into(),
            },
            None,
        );
        self.tasks().start(req).await.map(|r| r.into_inner().pid)
    }

    async fn wait(&self, id: &str, exec: &str) -> Result<u32, tonic::Status> {
        let req = self.rt.req(
            WaitRequest {
                container_id: id.into(),
                exec_id: exec.into(),
            },
            None,
        );
        self.tasks()
            .wait(req)
            .await
            .map(|r| r.into_inner().exit_status)
    }

    async fn get(&self, id: &str, exec: &str) -> Result<(u32, TaskStatus, u32), tonic::Status> {
        let req = self.rt.req(
            GetRequest {
                container_id: id.into(),
                exec_id: exec.into(),
            },
            None,
        );
        let p = self.tasks().get(req).await?.into_inner().process.unwrap();
        Ok((p.pid, p.status(), p.exit_status))
    }

    async fn delete(&self, id: &str) -> Result<u32, tonic::Status> {
        let req = self.rt.req(
            DeleteTaskRequest {
                container_id: id.into(),
            },
            None,
        );
        self.tasks()
            .delete(req)
            .await
            .map(|r| r.into_inner().exit_status)
    }

    async fn kill(&self, id: &str, exec: &str, signal: u32) -> Result<(), tonic::Status> {
        let req = self.rt.req(
            KillRequest {
                container_id: id.into(),
                exec_id: exec.into(),
                signal,
                all: false,
            },
            None,
        );
        self.tasks().kill(req).await.map(drop)
    }

    async fn exec(&self, id: &str, exec: &str, process: &[u8]) -> Result<(), tonic::Status> {
        let req = self.rt.req(
            ExecProcessRequest {
                container_id: id.into(),
                exec_id: exec.into(),
                spec: Some(prost_types::Any {
                    type_url: "types.containerd.io/opencontainers/runtime-spec/1/Process".into(),
                    value: process.to_vec(),
                }),
                ..Default::default()
            },
            None,
        );
        self.tasks().exec(req).await.map(drop)
    }
}

fn code<T: std::fmt::Debug>(r: Result<T, tonic::Status>) -> Code {
    r.expect_err("the call must fail").code()
}

fn process_json(args: &[&str]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "user": {"uid": 0, "gid": 0},
        "args": args,
        "env": ["PATH=/bin"],
        "cwd": "/",
    }))
    .unwrap()
}

async fn env(dir: &Path, p: &Proxy) -> Env {
    Env {
        rt: Rt::new(p.runtime_channel().await, "tasks-test"),
        dir: dir.to_path_buf(),
        root: rootfs(dir),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_runs_and_every_refusal_has_containerds_code() {
    require_environment();
    let d = tempfile::tempdir().unwrap();
    let p = Proxy::start(d.path());
    let e = env(d.path(), &p).await;

    // No container, no task.
    assert_eq!(code(e.create("nothing").await), Code::NotFound);
    assert_eq!(code(e.get("nothing", "").await), Code::NotFound);
    assert_eq!(code(e.delete("nothing").await), Code::NotFound);
    // A runtime Strata does not run; a spec that is not one.
    let good = spec(d.path(), &e.root, &["true"]);
    e.container("kata", "io.containerd.kata.v2", good).await;
    let err = e.create("kata").await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert!(err.message().contains("not supported"), "{}", err.message());
    e.container("badspec", "io.containerd.runc.v2", b"not json".to_vec())
        .await;
    assert_eq!(code(e.create("badspec").await), Code::InvalidArgument);

    // The lifecycle: created, started, exited 3, deleted with its status.
    e.runc_container("c1", &["sh", "-c", "exit 3"]).await;
    let pid = e.create("c1").await.unwrap();
    assert!(pid > 0);
    assert_eq!(code(e.create("c1").await), Code::AlreadyExists);
    assert_eq!(
        e.get("c1", "").await.unwrap(),
        (pid, TaskStatus::Created, 0)
    );
    assert_eq!(e.start("c1", "").await.unwrap(), pid);
    assert_eq!(e.wait("c1", "").await.unwrap(), 3);
    assert_eq!(
        e.get("c1", "").await.unwrap(),
        (pid, TaskStatus::Stopped, 3)
    );
    assert_eq!(code(e.kill("c1", "", 9).await), Code::NotFound);
    assert_eq!(e.delete("c1").await.unwrap(), 3);
    assert_eq!(code(e.get("c1", "").await), Code::NotFound);
    assert_eq!(code(e.delete("c1").await), Code::NotFound);

    // A running task: what it refuses, and an exec process.
    e.runc_container("c2", &["sleep", "1000"]).await;
    e.create("c2").await.unwrap();
    e.start("c2", "").await.unwrap();
    assert_eq!(code(e.start("c2", "").await), Code::FailedPrecondition);
    assert_eq!(code(e.delete("c2").await), Code::FailedPrecondition);
    let del = e.rt.req(DeleteContainerRequest { id: "c2".into() }, None);
    let err = e.rt.containers().delete(del).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_eq!(
        code(e.exec("c2", "bad/id", &process_json(&["true"])).await),
        Code::InvalidArgument
    );
    assert_eq!(
        code(e.exec("c2", "x", b"{\"args\": 7}").await),
        Code::InvalidArgument
    );
    e.exec("c2", "x", &process_json(&["sh", "-c", "exit 5"]))
        .await
        .unwrap();
    assert_eq!(
        code(e.exec("c2", "x", &process_json(&["true"])).await),
        Code::AlreadyExists
    );
    assert_eq!(code(e.kill("c2", "nope", 9).await), Code::NotFound);
    let xpid = e.start("c2", "x").await.unwrap();
    assert_eq!(e.wait("c2", "x").await.unwrap(), 5);
    let req = e.rt.req(
        DeleteProcessRequest {
            container_id: "c2".into(),
            exec_id: "x".into(),
        },
        None,
    );
    let r = e.tasks().delete_process(req).await.unwrap().into_inner();
    assert_eq!((r.id.as_str(), r.pid, r.exit_status), ("x", xpid, 5));
    assert_eq!(code(e.get("c2", "x").await), Code::NotFound);
    // An exec added, never started: it has no process to signal, and it can be deleted.
    e.exec("c2", "y", &process_json(&["true"])).await.unwrap();
    assert_eq!(code(e.kill("c2", "y", 9).await), Code::FailedPrecondition);
    assert_eq!(e.get("c2", "").await.unwrap().1, TaskStatus::Running);
    let req = e.rt.req(
        DeleteProcessRequest {
            container_id: "c2".into(),
            exec_id: "y".into(),
        },
        None,
    );
    let r = e.tasks().delete_process(req).await.unwrap().into_inner();
    assert_eq!((r.pid, r.exit_status), (0, 0));
    assert_eq!(code(e.get("c2", "y").await), Code::NotFound);
    let req = e.rt.req(
        ResizePtyRequest {
            container_id: "c2".into(),
            exec_id: String::new(),
            width: 80,
            height: 24,
        },
        None,
    );
    assert_eq!(
        code(e.tasks().resize_pty(req).await),
        Code::FailedPrecondition
    );
    let req = e.rt.req(MetricsRequest { filters: vec![] }, None);
    assert_eq!(code(e.tasks().metrics(req).await), Code::Unimplemented);
    let req = e.rt.req(
        ListPidsRequest {
            container_id: "c2".into(),
        },
        None,
    );
    let pids = e
        .tasks()
        .list_pids(req)
        .await
        .unwrap()
        .into_inner()
        .processes;
    assert_eq!(pids.len(), 1, "{pids:?}");
    e.kill("c2", "", 9).await.unwrap();
    assert_eq!(e.wait("c2", "").await.unwrap(), 137);
    assert_eq!(e.delete("c2").await.unwrap(), 137);
    let del = e.rt.req(DeleteContainerRequest { id: "c2".into() }, None);
    e.rt.containers().delete(del).await.unwrap();
    let list = e.rt.req(ListTasksRequest::default(), None);
    assert!(
        e.tasks()
            .list(list)
            .await
            .unwrap()
            .into_inner()
            .tasks
            .is_empty()
    );
    assert!(
        std::fs::read_dir(d.path().join("state/tasks/tasks-test"))
            .unwrap()
            .next()
            .is_none(),
        "deleted tasks leave no bundle"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_outlives_a_killed_daemon_and_reports_its_real_exit() {
    require_environment();
    let d = tempfile::tempdir().unwrap();
    let mut p = Proxy::start(d.path());
    let e = env(d.path(), &p).await;
    e.runc_container(
        "long",
        &[
            "sh",
            "-c",
            "trap 'exit 42' TERM; while :; do sleep 0.1; done",
        ],
    )
    .await;
    let pid = e.create("long").await.unwrap();
    e.start("long", "").await.unwrap();
    // The exit code comes from the shell's trap: give it time to set it up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    e.runc_container("brief", &["sh", "-c", "sleep 1; exit 4"])
        .await;
    e.create("brief").await.unwrap();
    e.start("brief", "").await.unwrap();

    p.kill9();
    assert!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok(),
        "the container's process lives on without the daemon"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    p.restart();
    let e = env_again(&e, &p).await;

    assert_eq!(
        e.get("long", "").await.unwrap(),
        (pid, TaskStatus::Running, 0)
    );
    assert_eq!(e.get("brief", "").await.unwrap().1, TaskStatus::Stopped);
    assert_eq!(e.wait("brief", "").await.unwrap(), 4);
    assert_eq!(e.delete("brief").await.unwrap(), 4);
    e.kill("long", "", 15).await.unwrap();
    assert_eq!(e.wait("long", "").await.unwrap(), 42);
    assert_eq!(e.delete("long").await.unwrap(), 42);
}

async fn env_again(e: &Env, p: &Proxy) -> Env {
    Env {
        rt: Rt::new(p.runtime_channel().await, &e.rt.ns),
        dir: e.dir.clone(),
        root: e.root.clone(),
    }
}
