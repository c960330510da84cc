//! The one place where library errors become gRPC statuses, with containerd's codes
//! (`errdefs.ToGRPC`): the class decides the code, the message is the error's text.

use tonic::{Code, Status};

/// A content-store error as containerd's content service reports it.
pub fn content(e: strata_content::Error) -> Status {
    use strata_content::Error as E;
    let code = match &e {
        E::InvalidArgument(_) => Code::InvalidArgument,
        E::NotFound(_) => Code::NotFound,
        E::AlreadyExists(_) => Code::AlreadyExists,
        E::FailedPrecondition(_) => Code::FailedPrecondition,
        E::Unavailable(_) => Code::Unavailable,
        E::OutOfRange(_) => Code::OutOfRange,
        _ => Code::Unknown,
    };
    Status::new(code, e.to_string())
}

/// A snapshotter error as containerd's snapshots service reports it.
pub fn snapshot(e: strata_snapshotters::Error) -> Status {
    use strata_snapshotters::Error as E;
    let code = match &e {
        E::InvalidArgument(_) => Code::InvalidArgument,
        E::NotFound(_) => Code::NotFound,
        E::AlreadyExists(_) => Code::AlreadyExists,
        E::FailedPrecondition(_) => Code::FailedPrecondition,
        E::Unavailable(_) => Code::Unavailable,
        E::NotImplemented(_) => Code::Unimplemented,
        _ => Code::Unknown,
    };
    Status::new(code, e.to_string())
}

/// A runtime error as containerd's runtime services report it.
pub fn runtime(e: strata_runtime::Error) -> Status {
    use strata_runtime::Error as E;
    let code = match &e {
        E::InvalidArgument(_) => Code::InvalidArgument,
        E::NotFound(_) => Code::NotFound,
        E::AlreadyExists(_) => Code::AlreadyExists,
        E::FailedPrecondition(_) => Code::FailedPrecondition,
        E::Unavailable(_) => Code::Unavailable,
        E::OutOfRange(_) => Code::OutOfRange,
        E::NotImplemented(_) => Code::Unimplemented,
        _ => Code::Unknown,
    };
    Status::new(code, e.to_string())
}

/// A malformed digest in a request: InvalidArgument, `"<input>" failed validation`.
pub fn digest(e: strata_core::digest::InvalidDigest) -> Status {
    Status::invalid_argument(e.to_string())
}

/// A blocking task that panicked or was cancelled.
pub fn join(e: tokio::task::JoinError) -> Status {
    Status::internal(format!("worker task failed: {e}"))
}
