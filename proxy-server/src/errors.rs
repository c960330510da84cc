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
        E::Io { source, .. } => io(source),
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
        E::Io { source, .. } => io(source),
        _ => Code::Unknown,
    };
    Status::new(code, e.to_string())
}

/// A failed filesystem operation: a full disk or quota is `ResourceExhausted` (containerd's
/// `errdefs.ErrResourceExhausted`, so a client can tell "free space and retry" from a broken
/// store), anything else `Unknown`.
fn io(source: &std::io::Error) -> Code {
    match source.raw_os_error() {
        Some(libc::ENOSPC | libc::EDQUOT) => Code::ResourceExhausted,
        _ => Code::Unknown,
    }
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

    /// Regression: ENOSPC was Unknown, like any I/O failure.
    #[test]
    fn full_disk_is_resource_exhausted() {
        let io = |errno| std::io::Error::from_raw_os_error(errno);
        let e = strata_content::Error::Io {
            context: "writing ingest of ref r at offset 0".into(),
            source: io(libc::ENOSPC),
        };
        let s = content(e);
        assert_eq!(s.code(), Code::ResourceExhausted);
        assert!(
            s.message().starts_with("writing ingest of ref r"),
            "{}",
            s.message()
        );
        let e = strata_snapshotters::Error::io("snapshot \"a\": mkdir", io(libc::EDQUOT));
        assert_eq!(snapshot(e).code(), Code::ResourceExhausted);
        let e = strata_content::Error::Io {
            context: "syncing ingest of ref r".into(),
            source: io(libc::EIO),
        };
        assert_eq!(content(e).code(), Code::Unknown);
    }
}
