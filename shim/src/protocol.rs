//! What the daemon and a shim say to each other: one JSON request per line on the shim's unix
//! socket (`<task dir>/shim.sock`), one JSON response per line back. `Wait` holds its
//! connection until the process exits.

use serde::{Deserialize, Serialize};

/// The standard streams of a process: fifo paths the client created (empty = none).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stdio {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// A request to a shim. `exec` names an exec process; none is the task's init process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// `runc create` of the init process from the bundle (the task directory).
    Create {
        stdio: Stdio,
    },
    /// `runc start` (init) or starts an exec process added by `Exec`.
    Start {
        exec: Option<String>,
    },
    /// Adds an exec process: `spec` is an OCI runtime-spec Process, as JSON.
    Exec {
        exec: String,
        spec: String,
        stdio: Stdio,
    },
    Kill {
        exec: Option<String>,
        signal: u32,
        all: bool,
    },
    /// Answers when the process has exited.
    Wait {
        exec: Option<String>,
    },
    State {
        exec: Option<String>,
    },
    Pids,
    Pause,
    Resume,
    Resize {
        exec: Option<String>,
        width: u16,
        height: u16,
    },
    /// Closes the process's stdin (it reads end of file).
    CloseIo {
        exec: Option<String>,
    },
    /// Forgets an exited exec process.
    DeleteProcess {
        exec: String,
    },
    /// `runc delete` of the task; the shim exits after answering.
    Delete,
}

/// The state of one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Created,
    Running,
    Paused,
    Stopped,
}

/// A process as the shim knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessState {
    pub pid: u32,
    pub status: Status,
    pub stdio: Stdio,
    /// Exit status (`128 + signal` for a signal) and time (nanoseconds since the epoch).
    pub exit: Option<Exit>,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exit {
    pub status: u32,
    pub at: i64,
}

/// The kinds of failure, as containerd's error classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    NotFound,
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    Internal,
}

/// A shim's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Response {
    Ok,
    Pid { pid: u32 },
    Exited { exit: Exit },
    State { state: ProcessState },
    Pids { pids: Vec<u32> },
    Error { kind: ErrorKind, message: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_format_is_one_tagged_json_object() {
        let r = Request::Kill {
            exec: None,
            signal: 15,
            all: true,
        };
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(line, r#"{"op":"kill","exec":null,"signal":15,"all":true}"#);
        assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), r);
        let a = Response::Exited {
            exit: Exit { status: 137, at: 5 },
        };
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"result":"exited","exit":{"status":137,"at":5}}"#
        );
        assert!(serde_json::from_str::<Request>(r#"{"op":"format_disk"}"#).is_err());
    }
}
