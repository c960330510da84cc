//! The one error type of this crate; each variant is a containerd error kind, so the gRPC server
//! maps them to status codes one to one.

/// A content-store failure. Messages are lowercase and name the offending digest or ref.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad request: empty ref, invalid labels, unparsable filter, bad update path.
    #[error("{0}")]
    InvalidArgument(String),
    /// No such blob in the view, or no such ingest.
    #[error("{0}")]
    NotFound(String),
    /// The view already holds the digest.
    #[error("{0}")]
    AlreadyExists(String),
    /// A commit whose size or digest does not match; the ingest is kept.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The ref is locked by a live writer.
    #[error("{0}")]
    Unavailable(String),
    /// A read or write outside the object.
    #[error("{0}")]
    OutOfRange(String),
    /// A stored record or key does not decode (bad JSON, unparsable digest): the database is
    /// corrupt. Never skipped or converted into a valid value (gRPC DataLoss).
    #[error("{0}")]
    Corrupt(String),
    /// A filesystem operation failed; `context` names what and where.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The database failed.
    #[error("rocksdb: {0}")]
    Db(#[from] rocksdb::Error),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Builds a closure wrapping an `io::Error` with `context` (for `map_err`).
pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

/// A stored record or key that does not decode: [`Error::Corrupt`] naming `what` and its key
/// (`key`: the view and digest or ref), logged where it is found.
pub(crate) fn corrupt(what: &str, key: &str, e: impl std::fmt::Display) -> Error {
    let msg = format!("corrupt {what} {key}: {e}");
    tracing::error!("{msg}");
    Error::Corrupt(msg)
}
