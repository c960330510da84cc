//! The `strata-lazy` snapshot backend: overlay snapshots whose eStargz / zstd:chunked layers
//! containerd's unpacker asks for are served from the registry through FUSE before they are
//! downloaded ([`LazyLayout`]), then copied in the background and served locally.

mod activity;
mod head;
mod labels;
mod layout;
mod remote;
pub mod serve;
mod source;

pub use activity::{Activity, FILL_PIECE, Yielding};
pub use labels::{LayerRef, SNAPSHOT_REF, STORE_BLOB};
pub use layout::{LazyConfig, LazyLayout, Opener};
pub use remote::registry_opener;
pub use serve::Server;
pub use source::BlobSource;

/// The backend type: [`strata_snapshotters::Backend`] with the lazy layout.
pub type Lazy = strata_snapshotters::Backend<LazyLayout>;
