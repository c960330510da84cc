//! The one place where library errors become gRPC statuses, with containerd's codes
//! (`errdefs.ToGRPC`): the class decides the code, the message is the error's text.
//!
//! A corrupt stored record (`Corrupt`) is `DataLoss`: gRPC defines it as "unrecoverable data
//! loss or corruption", which is exactly what it is; `Internal` would suggest a server bug and
//! `Unknown` would hide it among I/O failures. containerd's clients map any code they do not
//! know to `errdefs.ErrUnknown`, keeping the message, so nothing that worked breaks.

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
        E::Corrupt(_) => Code::DataLoss,
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
        E::Corrupt(_) => Code::DataLoss,
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
        E::Corrupt(_) => Code::DataLoss,
        E::Internal(_) => Code::Unknown,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corruption_is_data_loss() {
        let s = content(strata_content::Error::Corrupt("corrupt key".into()));
        assert_eq!((s.code(), s.message()), (Code::DataLoss, "corrupt key"));
        let s = snapshot(strata_snapshotters::Error::Corrupt("corrupt key".into()));
        assert_eq!((s.code(), s.message()), (Code::DataLoss, "corrupt key"));
        // Through the runtime socket too: the runtime keeps the kind of the store's error.
        let e = strata_runtime::Error::from(strata_content::Error::Corrupt("corrupt key".into()));
        let s = runtime(e);
        assert_eq!((s.code(), s.message()), (Code::DataLoss, "corrupt key"));
        let e = strata_runtime::Error::from(strata_snapshotters::Error::Corrupt("bad".into()));
        assert_eq!(runtime(e).code(), Code::DataLoss);
    }
}
