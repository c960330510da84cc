//! Every conformance case: `async fn(Ctx)`, one `#[test]` each through [`testsuite!`](crate::testsuite!).
//!
//! containerd 1.6's cases keep their names (snake_case); ours follow them.

mod basic;
mod crash;
mod errors;
mod issues;
mod keys;
mod labels;
mod mounts;
mod remove;
mod restart;
mod views;
mod walk;

pub use basic::{basic, prepare_view_failing, stat_active, stat_committed, transitivity};
pub use crash::kill9_during_prepare_commit;
pub use errors::error_variants;
pub use issues::{
    chown, deleted_files_in_child_snapshot, directory_permission_on_commit, layer_file_update,
    move_file_from_lower_layer, remove_directory_in_lower_layer,
};
pub use keys::odd_keys;
pub use labels::{commit_replaces_labels, label_limits, update, update_masks};
pub use mounts::{layers_128_mount, root_permission, view_readonly};
pub use remove::{remove, remove_intermediate_snapshot};
pub use restart::{close_twice, restart_persistence};
pub use views::{concurrent_prepare, prepare_remove_parent_race, view_isolation};
pub use walk::{filter_errors, stat_in_walk, walk};
