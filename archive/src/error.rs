//! The one error type of this crate. Every variant names the offending entry or stream.

/// A failure applying or writing a layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The layer is malformed or hostile: a bad or escaping name, a link out of the tree, a
    /// header that lies, a truncated or corrupt stream. Nothing outside the target was touched.
    #[error("invalid layer: {0}")]
    Invalid(String),
    /// The bytes do not match the digest they were given under.
    #[error("{0}")]
    Digest(String),
    /// A configured limit was exceeded (a decompression bomb, too many entries).
    #[error("layer limit exceeded: {0}")]
    Limit(String),
    /// A media type or entry type this crate does not handle.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The filesystem failed; `context` says what and where.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// Marker carried inside an `io::Error` by the stream wrappers, so a limit or corruption found
/// deep in a reader chain surfaces as its own variant.
#[derive(Debug)]
pub(crate) enum StreamFault {
    Limit(String),
    Corrupt(String),
}

impl std::fmt::Display for StreamFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamFault::Limit(m) | StreamFault::Corrupt(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for StreamFault {}

/// Classifies an error from reading the layer stream: limits and corruption keep their kind,
/// anything else is a malformed stream (`what` says where it was met).
pub(crate) fn from_stream(what: &str, e: std::io::Error) -> Error {
    if let Some(f) = e.get_ref().and_then(|i| i.downcast_ref::<StreamFault>()) {
        return match f {
            StreamFault::Limit(m) => Error::Limit(m.clone()),
            StreamFault::Corrupt(m) => Error::Invalid(m.clone()),
        };
    }
    Error::Invalid(format!("{what}: {e}"))
}
