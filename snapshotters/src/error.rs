//! The closed set of snapshotter errors; the proxy server maps each variant to its gRPC code
//! in one place (containerd's `errdefs` classes).

/// Errors of every snapshotter operation. Messages are lowercase and name the key.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// gRPC InvalidArgument.
    #[error("{0}")]
    InvalidArgument(String),
    /// gRPC NotFound.
    #[error("{0}")]
    NotFound(String),
    /// gRPC AlreadyExists.
    #[error("{0}")]
    AlreadyExists(String),
    /// gRPC FailedPrecondition.
    #[error("{0}")]
    FailedPrecondition(String),
    /// gRPC Unavailable.
    #[error("{0}")]
    Unavailable(String),
    /// gRPC Unimplemented.
    #[error("{0}")]
    NotImplemented(String),
    /// A stored record does not decode (unknown kind byte, bad JSON): the metastore is
    /// corrupt. Never converted into a valid value (gRPC DataLoss).
    #[error("{0}")]
    Corrupt(String),
    /// A filesystem operation failed (gRPC Unknown).
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The metastore's database failed (gRPC Unknown). Opaque: the storage engine is not
    /// part of the API.
    #[error("metastore: {0}")]
    Db(#[source] DbError),
}

/// A failure of the database under the metastore; its message is the engine's.
#[derive(Debug)]
pub struct DbError(rocksdb::Error);

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for DbError {}

#[doc(hidden)]
impl From<rocksdb::Error> for Error {
    fn from(e: rocksdb::Error) -> Self {
        Error::Db(DbError(e))
    }
}

/// Result alias for snapshotter operations.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The same error, an [`Error::Io`]'s context prefixed with `snapshot {key:?}: ` (the other
    /// variants name their key already).
    pub(crate) fn for_key(self, key: &str) -> Self {
        match self {
            Error::Io { context, source } => Error::Io {
                context: format!("snapshot {key:?}: {context}"),
                source,
            },
            e => e,
        }
    }

    /// Wraps an I/O error with what was being done (and the path involved).
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}
