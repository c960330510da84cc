//! Fault-injection seams. The filesystem and record steps of Prepare, Commit and Remove call
//! [`check`] just before their syscall (or metastore write); unit tests arm a [`Point`] to
//! make that step fail with an errno (ENOSPC, EIO). Outside `cfg(test)` [`check`] is a no-op.

use std::io;

/// A step that tests can make fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Point {
    /// `mkdir` of a `new-*` directory.
    Mkdir,
    /// `rename` of `new-*` to `<id>`.
    InstallRename,
    /// `fsync` of `snapshots/` after that rename.
    InstallSync,
    /// The metastore write creating a snapshot's record.
    CreateRecord,
    /// The metastore write turning an active snapshot into a committed one.
    CommitRecord,
    /// The metastore write removing a snapshot's record.
    RemoveRecord,
    /// `rename` of `<id>` to `rm-<id>`.
    RemoveRename,
    /// Deleting `rm-<id>`.
    RemoveDelete,
}

#[cfg(not(test))]
pub(crate) use plain::check;

#[cfg(test)]
pub(crate) use armed::{check, inject};

#[cfg(not(test))]
mod plain {
    use super::*;

    /// The seam before a step: never fails outside tests.
    #[inline(always)]
    pub(crate) fn check(_: Point) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod armed {
    use std::cell::RefCell;

    use super::*;

    thread_local! {
        /// Armed points of this thread, each failing once with its errno, in order.
        static ARMED: RefCell<Vec<(Point, i32)>> = const { RefCell::new(Vec::new()) };
    }

    /// Disarms this thread's remaining faults when dropped (a failed test leaks none).
    #[derive(Debug)]
    #[must_use = "the faults are disarmed when this is dropped"]
    pub(crate) struct Armed;

    impl Drop for Armed {
        fn drop(&mut self) {
            ARMED.with_borrow_mut(Vec::clear);
        }
    }

    /// Makes the next step at `point` on this thread fail once with `errno`.
    pub(crate) fn inject(point: Point, errno: i32) -> Armed {
        ARMED.with_borrow_mut(|a| a.push((point, errno)));
        Armed
    }

    /// The armed error of `point`, consumed; `Ok` when none is armed.
    pub(crate) fn check(point: Point) -> io::Result<()> {
        ARMED.with_borrow_mut(|a| match a.iter().position(|(p, _)| *p == point) {
            Some(i) => Err(io::Error::from_raw_os_error(a.remove(i).1)),
            None => Ok(()),
        })
    }
}
