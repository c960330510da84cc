//! What tasks publish: containerd's `/tasks/*` events.

use strata_snapshotters::Mount;

use super::{Exit, Stdio};

/// A task event (containerd's `api/events/task.proto` payloads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskEvent {
    Create {
        container_id: String,
        bundle: String,
        rootfs: Vec<Mount>,
        stdio: Stdio,
        pid: u32,
    },
    Start {
        container_id: String,
        pid: u32,
    },
    /// A process ended; `id` is the exec id, or the container id for the init process.
    Exit {
        container_id: String,
        id: String,
        pid: u32,
        exit: Exit,
    },
    Delete {
        container_id: String,
        id: String,
        pid: u32,
        exit: Exit,
    },
    ExecAdded {
        container_id: String,
        exec_id: String,
    },
    ExecStarted {
        container_id: String,
        exec_id: String,
        pid: u32,
    },
    Paused {
        container_id: String,
    },
    Resumed {
        container_id: String,
    },
}

impl TaskEvent {
    pub fn topic(&self) -> &'static str {
        match self {
            TaskEvent::Create { .. } => "/tasks/create",
            TaskEvent::Start { .. } => "/tasks/start",
            TaskEvent::Exit { .. } => "/tasks/exit",
            TaskEvent::Delete { .. } => "/tasks/delete",
            TaskEvent::ExecAdded { .. } => "/tasks/exec-added",
            TaskEvent::ExecStarted { .. } => "/tasks/exec-started",
            TaskEvent::Paused { .. } => "/tasks/paused",
            TaskEvent::Resumed { .. } => "/tasks/resumed",
        }
    }

    pub fn container_id(&self) -> &str {
        match self {
            TaskEvent::Create { container_id, .. }
            | TaskEvent::Start { container_id, .. }
            | TaskEvent::Exit { container_id, .. }
            | TaskEvent::Delete { container_id, .. }
            | TaskEvent::ExecAdded { container_id, .. }
            | TaskEvent::ExecStarted { container_id, .. }
            | TaskEvent::Paused { container_id }
            | TaskEvent::Resumed { container_id } => container_id,
        }
    }

    /// A payload field by containerd's field path.
    pub(crate) fn field(&self, name: &str) -> Option<String> {
        match (self, name) {
            (_, "container_id") => Some(self.container_id().to_string()),
            (TaskEvent::Exit { id, .. } | TaskEvent::Delete { id, .. }, "id") => Some(id.clone()),
            (
                TaskEvent::ExecAdded { exec_id, .. } | TaskEvent::ExecStarted { exec_id, .. },
                "exec_id",
            ) => Some(exec_id.clone()),
            (TaskEvent::Create { bundle, .. }, "bundle") => Some(bundle.clone()),
            (
                TaskEvent::Create { pid, .. }
                | TaskEvent::Start { pid, .. }
                | TaskEvent::Exit { pid, .. }
                | TaskEvent::Delete { pid, .. }
                | TaskEvent::ExecStarted { pid, .. },
                "pid",
            ) => Some(pid.to_string()),
            (TaskEvent::Exit { exit, .. } | TaskEvent::Delete { exit, .. }, "exit_status") => {
                Some(exit.status.to_string())
            }
            _ => None,
        }
    }
}
