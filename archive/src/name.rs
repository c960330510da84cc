//! Tar entry names, checked and made relative to the layer's root.
//!
//! `./` and `.` components are dropped; an empty result is the root itself. Absolute names,
//! `..` components and NUL bytes are refused: no legitimate layer writer produces them, and a
//! layer must never address anything outside its own tree.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::{Error, Result};

/// The checked, relative form of a tar name (`"."` for the root).
pub fn clean(name: &[u8]) -> Result<PathBuf> {
    let shown = || String::from_utf8_lossy(name).into_owned();
    if name.contains(&0) {
        return Err(Error::Invalid(format!(
            "entry name {:?} contains NUL",
            shown()
        )));
    }
    if name.starts_with(b"/") {
        return Err(Error::Invalid(format!(
            "entry name {:?} is absolute",
            shown()
        )));
    }
    let mut out = PathBuf::new();
    for comp in name.split(|b| *b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                return Err(Error::Invalid(format!(
                    "entry name {:?} contains '..'",
                    shown()
                )));
            }
            c => out.push(OsStr::from_bytes(c)),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    Ok(out)
}

/// The parent (`"."` for top-level names) and the last component of a cleaned name.
pub fn split(path: &std::path::Path) -> (PathBuf, &OsStr) {
    let base = path.file_name().unwrap_or(OsStr::new("."));
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    (parent, base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_names_are_cleaned() {
        for (input, want) in [
            (&b"./a/b/"[..], "a/b"),
            (b"a//b/./c", "a/b/c"),
            (b"./", "."),
            (b".", "."),
            (b"a", "a"),
        ] {
            assert_eq!(clean(input).unwrap(), PathBuf::from(want), "{input:?}");
        }
    }

    #[test]
    fn escapes_and_nul_are_refused() {
        for bad in [&b"/etc/passwd"[..], b"../x", b"a/../../x", b"a/..", b"a\0b"] {
            assert!(matches!(clean(bad), Err(Error::Invalid(_))), "{bad:?}");
        }
    }

    #[test]
    fn split_gives_parent_and_base() {
        let p = PathBuf::from("a/b/c");
        assert_eq!(split(&p), (PathBuf::from("a/b"), OsStr::new("c")));
        let p = PathBuf::from("top");
        assert_eq!(split(&p), (PathBuf::from("."), OsStr::new("top")));
    }
}
