//! The closed set of errors of reading a lazy layer. Messages are lowercase and name the entry.

/// Errors of reading a lazy layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes are not a well-formed layer of the format (footer, TOC, compressed data).
    #[error("malformed layer: {0}")]
    Malformed(String),
    /// Content does not match the digest that vouches for it (the TOC, a chunk).
    #[error("digest mismatch: {0}")]
    Digest(String),
    /// A TOC entry that cannot be served safely (a name escaping the layer, a chunk that does
    /// not tile its file, an unknown type).
    #[error("toc entry {name:?}: {reason}")]
    Entry { name: String, reason: String },
    /// Something larger than the reader accepts (a decompression bomb, a hostile TOC).
    #[error("{what} is larger than the {limit} bytes allowed")]
    TooLarge { what: String, limit: u64 },
    /// No such file in the layer.
    #[error("{0:?} is not a regular file of the layer")]
    NotFound(String),
    /// Reading the layer's bytes failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// Result alias for lazy-layer reads.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}
