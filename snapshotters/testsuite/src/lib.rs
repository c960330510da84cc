//! The conformance suite every [`Snapshotter`] backend runs with one line: the built-in ones
//! and any a vendor writes outside this workspace.
//!
//! It mirrors containerd 1.6's `snapshots/testsuite` case by case (Basic, StatActive, ...,
//! 128LayersMount) and adds what a drop-in must also get right: opaque keys, filter and label
//! errors, error variants, per-view isolation, concurrent Prepare (also racing Remove),
//! restart persistence and crash consistency under `kill -9`.
//!
//! ```ignore
//! // tests/overlay.rs (strata-snapshot-testsuite is a dev-dependency)
//! use strata_snapshotters::overlay::Overlay;
//! strata_snapshot_testsuite::testsuite!(overlay, |root| Overlay::open(root));
//! ```
//!
//! An opener that is itself async is written `testsuite!(name, async |root| Open::open(root).await)`.
//! `testsuite!(name, setup = |b| b.with_data_dir(..).with_place(..).with_purge(..), |root| ..)`
//! adjusts the [`Backend`] first: where its snapshots' own directories live (for the crash
//! case), where the case roots go and how to delete them. Attributes before the name go on
//! every case: `testsuite!(#[ignore = "needs a btrfs mount"] btrfs, ..)` for a backend whose
//! precondition only some runs provide (they run it with `--ignored`).
//!
//! The macro expands to a module `overlay` holding one `#[test]` per case (each runs on its own
//! multi-threaded tokio runtime, with a fresh `<tmp>/root` for the backend and a `<tmp>/work`
//! play area). The opener receives `&Path` and returns `Result<S, E>` with
//! `S: Snapshotter`, `E: Debug`; it is called again on the same root by the restart and crash
//! cases. The cases mount what the backend returns (with the production mounter,
//! [`strata_snapshotters::mount`]), so they need root: without it each case fails, saying so; a
//! case never passes without running.
//!
//! A crate of its own, used as a dev-dependency only: the daemon never compiles it, and adding
//! it to a build changes no feature of any crate the daemon links (so it costs no rebuild).

pub mod cases;
pub mod fstest;
mod harness;
mod layers;
pub mod mount;

pub use harness::{
    Backend, BoxFuture, CRASH_CHILD_ENV, Ctx, DataDirFn, OpenResult, PlaceFn, VIEW, opt, run,
};
pub use layers::{check_snapshots, create_snapshot, prepare_mount};
pub use strata_snapshotters::{Error, Info, Kind, Mount, Snapshotter, Usage};

/// Expands to a module named `$name` with one test per conformance case; see the [module
/// docs](crate).
#[macro_export]
macro_rules! testsuite {
    (@module $attrs:tt $name:ident, $setup:expr, |$root:ident: &::std::path::Path| $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn backend() -> $crate::Backend {
                let backend = $crate::Backend::new(stringify!($name), |root: ::std::path::PathBuf| {
                    ::std::boxed::Box::pin(async move {
                        let $root: &::std::path::Path = root.as_path();
                        match $body.await {
                            Ok(s) => Ok(::std::sync::Arc::new(s)
                                as ::std::sync::Arc<dyn $crate::Snapshotter>),
                            Err(e) => Err(format!("{e:?}")),
                        }
                    }) as $crate::BoxFuture<$crate::OpenResult>
                });
                let setup: fn($crate::Backend) -> $crate::Backend = $setup;
                setup(backend)
            }

            $crate::__testsuite_cases!(
                backend;
                $attrs;
                basic,
                stat_active,
                stat_committed,
                transitivity,
                prepare_view_failing,
                update,
                remove,
                walk,
                layer_file_update,
                remove_directory_in_lower_layer,
                chown,
                directory_permission_on_commit,
                remove_intermediate_snapshot,
                deleted_files_in_child_snapshot,
                move_file_from_lower_layer,
                view_readonly,
                stat_in_walk,
                close_twice,
                root_permission,
                layers_128_mount,
                odd_keys,
                filter_errors,
                label_limits,
                update_masks,
                commit_replaces_labels,
                error_variants,
                view_isolation,
                concurrent_prepare,
                prepare_remove_parent_race,
                restart_persistence,
                kill9_during_prepare_commit,
            );
        }
    };
    ($(#[$attr:meta])* $name:ident, setup = $setup:expr, async $open:expr $(,)?) => {
        $crate::testsuite!(@module [$(#[$attr])*] $name, $setup, |root: &::std::path::Path| async move {
            let open = $open;
            open(root).await
        });
    };
    ($(#[$attr:meta])* $name:ident, setup = $setup:expr, $open:expr $(,)?) => {
        $crate::testsuite!(@module [$(#[$attr])*] $name, $setup, |root: &::std::path::Path| async move {
            let open = $open;
            open(root)
        });
    };
    ($(#[$attr:meta])* $name:ident, async $open:expr $(,)?) => {
        $crate::testsuite!(@module [$(#[$attr])*] $name, |b| b, |root: &::std::path::Path| async move {
            let open = $open;
            open(root).await
        });
    };
    ($(#[$attr:meta])* $name:ident, $open:expr $(,)?) => {
        $crate::testsuite!(@module [$(#[$attr])*] $name, |b| b, |root: &::std::path::Path| async move {
            let open = $open;
            open(root)
        });
    };
}

/// One `#[test]` per case name, each carrying `$attrs` (implementation detail of
/// [`testsuite!`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __testsuite_cases {
    ($backend:ident; $attrs:tt; $($case:ident),* $(,)?) => {
        $(
            $crate::__testsuite_case!($attrs $backend $case);
        )*
    };
}

/// One case's `#[test]` (implementation detail of [`testsuite!`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __testsuite_case {
    ([$(#[$attr:meta])*] $backend:ident $case:ident) => {
        $(#[$attr])*
        #[test]
        fn $case() {
            $crate::run(
                $backend(),
                concat!(module_path!(), "::", stringify!($case)),
                |cx| ::std::boxed::Box::pin($crate::cases::$case(cx)),
            );
        }
    };
}

/// Asserts that `$res` is an `Err` matching `$pat` (an [`Error`](crate::Error) variant).
#[doc(hidden)]
#[macro_export]
macro_rules! __assert_err {
    ($res:expr, $pat:pat, $($what:tt)+) => {
        match $res {
            Err($pat) => {}
            other => panic!(
                "{}: expected Err({}), got {:?}",
                format!($($what)+),
                stringify!($pat),
                other
            ),
        }
    };
}
