//! The mounts of an overlay snapshot, exactly as containerd 1.6 builds them
//! (`snapshots/overlay/overlay.go` `mounts()`; option order asserted by its tests):
//!
//! * no parents: `bind` of `<id>/fs`, `["rw"|"ro", "rbind"]` (a view is `ro`);
//! * a view with one parent: `bind` of `<parent>/fs`, `["ro", "rbind"]`;
//! * active with parents: `overlay` with `[index=off?, workdir=, upperdir=, lowerdir=p0:p1:…]`,
//!   `p0` the immediate parent;
//! * a view with two or more parents: `overlay` with `[index=off?, lowerdir=…]` only.
//!
//! Lowerdirs are absolute; the mounter shortens long option strings (`crate::mount`).

use crate::fsutil::Dirs;
use crate::metastore::Snapshot;
use crate::{Kind, Mount};

/// The mounts of `snap`; `index_off` adds `index=off`.
pub fn mounts(dirs: &Dirs, snap: &Snapshot, index_off: bool) -> Vec<Mount> {
    let fs = |id: u64| dirs.path(id).join("fs").display().to_string();
    let active = snap.kind == Kind::Active;
    match snap.parent_ids.as_slice() {
        [] => vec![bind(fs(snap.id), !active)],
        [p] if !active => vec![bind(fs(*p), true)],
        parents => {
            let mut options = Vec::new();
            if index_off {
                options.push("index=off".to_string());
            }
            if active {
                let work = dirs.path(snap.id).join("work");
                options.push(format!("workdir={}", work.display()));
                options.push(format!("upperdir={}", fs(snap.id)));
            }
            let lower: Vec<String> = parents.iter().map(|p| fs(*p)).collect();
            options.push(format!("lowerdir={}", lower.join(":")));
            vec![Mount {
                kind: "overlay".into(),
                source: "overlay".into(),
                target: String::new(),
                options,
            }]
        }
    }
}

fn bind(source: String, ro: bool) -> Mount {
    Mount {
        kind: "bind".into(),
        source,
        target: String::new(),
        options: vec![if ro { "ro" } else { "rw" }.into(), "rbind".into()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(id: u64, kind: Kind, parent_ids: Vec<u64>) -> Snapshot {
        Snapshot {
            id,
            kind,
            parent_ids,
        }
    }

    #[test]
    fn shapes_match_containerd() {
        let d = tempfile::tempdir().unwrap();
        let dirs = Dirs::new(d.path()).unwrap();
        let root = d.path().join("snapshots").display().to_string();

        let m = mounts(&dirs, &snap(1, Kind::Active, vec![]), true);
        assert_eq!(
            (m[0].kind.as_str(), m[0].source.clone()),
            ("bind", format!("{root}/1/fs"))
        );
        assert_eq!(m[0].options, ["rw", "rbind"]);
        assert_eq!(
            mounts(&dirs, &snap(1, Kind::View, vec![]), true)[0].options,
            ["ro", "rbind"]
        );

        let m = mounts(&dirs, &snap(3, Kind::View, vec![2]), true);
        assert_eq!(
            (m[0].source.clone(), m[0].options.clone()),
            (
                format!("{root}/2/fs"),
                vec!["ro".to_string(), "rbind".into()]
            )
        );

        let m = mounts(&dirs, &snap(3, Kind::Active, vec![2, 1]), true);
        assert_eq!(
            (m[0].kind.as_str(), m[0].source.as_str()),
            ("overlay", "overlay")
        );
        assert_eq!(
            m[0].options,
            [
                "index=off".to_string(),
                format!("workdir={root}/3/work"),
                format!("upperdir={root}/3/fs"),
                format!("lowerdir={root}/2/fs:{root}/1/fs"),
            ]
        );

        let m = mounts(&dirs, &snap(4, Kind::View, vec![2, 1]), false);
        assert_eq!(m[0].options, [format!("lowerdir={root}/2/fs:{root}/1/fs")]);
    }
}
