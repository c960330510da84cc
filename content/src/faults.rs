//! Fault-injection seams. The syscalls of an ingest and of a commit go through [`check`] (or
//! [`write_all_at`]) just before they run; unit tests arm a [`Point`] to make that syscall fail
//! with an errno (ENOSPC, EIO). Outside `cfg(test)` the seams are the plain calls: nothing to
//! arm, nothing kept, no cost.

use std::fs::File;
use std::io;

/// A syscall that tests can make fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Point {
    /// `pwrite` of ingest bytes ([`write_all_at`]; when armed, half the bytes land first).
    IngestWrite,
    /// `fsync` of an ingest's data file (checkpoint or commit).
    IngestSync,
    /// `rename` of an ingest's data file to the blob path.
    CommitRename,
    /// `fsync` of the blob directory after that rename.
    CommitDirSync,
}

#[cfg(not(test))]
pub(crate) use plain::{check, write_all_at};

#[cfg(test)]
pub(crate) use armed::{check, inject, write_all_at};

#[cfg(not(test))]
mod plain {
    use super::*;
    use std::os::unix::fs::FileExt;

    /// The seam before a syscall: never fails outside tests.
    #[inline(always)]
    pub(crate) fn check(_: Point) -> io::Result<()> {
        Ok(())
    }

    /// `pwrite` of all of `data` at `offset`.
    #[inline(always)]
    pub(crate) fn write_all_at(file: &File, data: &[u8], offset: u64) -> io::Result<()> {
        check(Point::IngestWrite)?;
        file.write_all_at(data, offset)
    }
}

#[cfg(test)]
mod armed {
    use std::cell::RefCell;
    use std::os::unix::fs::FileExt;

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

    /// Makes the next syscall at `point` on this thread fail once with `errno`.
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

    /// `pwrite` of `data` at `offset`; when [`Point::IngestWrite`] is armed, the first half of
    /// `data` is written and then the write fails, as ENOSPC does in the middle of a write.
    pub(crate) fn write_all_at(file: &File, data: &[u8], offset: u64) -> io::Result<()> {
        if let Err(e) = check(Point::IngestWrite) {
            file.write_all_at(&data[..data.len() / 2], offset)?;
            return Err(e);
        }
        file.write_all_at(data, offset)
    }
}

#[cfg(test)]
mod tests;
