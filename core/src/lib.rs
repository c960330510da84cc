//! Pieces every Strata crate shares: containerd's filter grammar ([`filters`]), its label rules
//! ([`labels`]), OCI digests ([`digest`]), the view that owns a record ([`PROXY_VIEW`]) and the one
//! RocksDB every crate keeps its records in ([`db`], behind the default `db` feature).

#[cfg(feature = "db")]
pub mod db;
pub mod digest;
pub mod filters;
pub mod goquote;
pub mod identifiers;
pub mod labels;
pub mod time;

/// The view every request arriving over the proxy socket belongs to, whatever
/// `containerd-namespace` header it carries or lacks. Other clients (the in-process runtime)
/// use views of their own, so containerd's GC never sees their records.
pub const PROXY_VIEW: &str = "proxy";
