//! The one error type of the runtime: containerd's error kinds, so the daemon maps each variant
//! to its gRPC code in one place. Errors of the stores below convert kind for kind.

/// A runtime failure. Messages are lowercase and name the offending object.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A malformed request: bad identifier, label, filter, field path or digest.
    #[error("{0}")]
    InvalidArgument(String),
    /// No such object in the namespace.
    #[error("{0}")]
    NotFound(String),
    /// The name or id is taken.
    #[error("{0}")]
    AlreadyExists(String),
    /// The request cannot be served in the current state (no namespace, non-empty namespace).
    #[error("{0}")]
    FailedPrecondition(String),
    /// A resource is busy (an ingest held by another writer).
    #[error("{0}")]
    Unavailable(String),
    /// A read or write outside an object.
    #[error("{0}")]
    OutOfRange(String),
    /// Not supported (an unknown lease resource type).
    #[error("{0}")]
    NotImplemented(String),
    /// A failure below the runtime (filesystem, database, a task that died).
    #[error("{0}")]
    Internal(String),
    /// A stored record that does not decode: corruption, reported as such.
    #[error("{0}")]
    Corrupt(String),
}

/// Result alias of the runtime.
pub type Result<T> = std::result::Result<T, Error>;

impl From<rocksdb::Error> for Error {
    fn from(e: rocksdb::Error) -> Self {
        Error::Internal(format!("database: {e}"))
    }
}

impl From<strata_content::Error> for Error {
    fn from(e: strata_content::Error) -> Self {
        use strata_content::Error as E;
        match e {
            E::InvalidArgument(m) => Error::InvalidArgument(m),
            E::NotFound(m) => Error::NotFound(m),
            E::AlreadyExists(m) => Error::AlreadyExists(m),
            E::FailedPrecondition(m) => Error::FailedPrecondition(m),
            E::Unavailable(m) => Error::Unavailable(m),
            E::OutOfRange(m) => Error::OutOfRange(m),
            e @ E::Corrupt(_) => Error::Corrupt(e.to_string()),
            other => Error::Internal(other.to_string()),
        }
    }
}

impl From<strata_snapshotters::Error> for Error {
    fn from(e: strata_snapshotters::Error) -> Self {
        use strata_snapshotters::Error as E;
        match e {
            E::InvalidArgument(m) => Error::InvalidArgument(m),
            E::NotFound(m) => Error::NotFound(m),
            E::AlreadyExists(m) => Error::AlreadyExists(m),
            E::FailedPrecondition(m) => Error::FailedPrecondition(m),
            E::Unavailable(m) => Error::Unavailable(m),
            E::NotImplemented(m) => Error::NotImplemented(m),
            e @ E::Corrupt(_) => Error::Corrupt(e.to_string()),
            other => Error::Internal(other.to_string()),
        }
    }
}

impl From<strata_core::labels::InvalidLabels> for Error {
    fn from(e: strata_core::labels::InvalidLabels) -> Self {
        Error::InvalidArgument(e.0)
    }
}

impl From<strata_core::filters::ParseError> for Error {
    fn from(e: strata_core::filters::ParseError) -> Self {
        Error::InvalidArgument(e.0)
    }
}

impl From<strata_core::identifiers::InvalidIdentifier> for Error {
    fn from(e: strata_core::identifiers::InvalidIdentifier) -> Self {
        Error::InvalidArgument(e.0)
    }
}

/// A record that does not decode: corruption, reported with its key.
pub(crate) fn corrupt(what: &str, key: &[u8], e: serde_json::Error) -> Error {
    Error::Internal(format!(
        "corrupt {what} record {:?}: {e}",
        String::from_utf8_lossy(key)
    ))
}
