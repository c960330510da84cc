//! Generated gRPC types, nested as containerd's proto packages (so cross-package paths resolve).

#![allow(missing_docs, clippy::all)]

pub mod containerd {
    pub mod types {
        tonic::include_proto!("containerd.types");
    }
    pub mod services {
        pub mod content {
            pub mod v1 {
                tonic::include_proto!("containerd.services.content.v1");
            }
        }
        pub mod snapshots {
            pub mod v1 {
                tonic::include_proto!("containerd.services.snapshots.v1");
            }
        }
    }
}

pub use containerd::services::content::v1 as content;
pub use containerd::services::snapshots::v1 as snapshots;
pub use containerd::types;
