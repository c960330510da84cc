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

/// A record that does not decode: treated as an I/O-level corruption naming the key.
pub(crate) fn corrupt(what: &str, e: serde_json::Error) -> Error {
    Error::Io {
        context: format!("decoding {what}"),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    }
}
