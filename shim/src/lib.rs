//! strata-shim: one small process per task, between Strata's runtime and runc.
//!
//! A task's processes must outlive the daemon (an upgrade, a crash), and someone must reap them
//! and keep their exit status, and keep a terminal's master side open. containerd runs a
//! `containerd-shim-runc-v2` per container for this; Strata's shim is the same idea, smaller:
//! started detached (its own session, so signals to the daemon's group never reach it), a child
//! subreaper (the container's processes are its children, whatever runc does), it runs `runc`
//! for create/start/exec/kill/pause/resume/ps/delete, passes stdout and stderr fifos straight to
//! the container (no copying), copies only stdin (so CloseIO can end it) and a terminal, keeps
//! exit statuses (also on disk, `<dir>/<process>.exit`), and answers the daemon on
//! `<dir>/shim.sock` ([`protocol`]). A restarted daemon reconnects to the sockets it finds.

pub mod client;
pub mod protocol;

pub use client::{Error, Shim};
pub use protocol::{Exit, ProcessState, Request, Response, Status, Stdio};
