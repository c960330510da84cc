//! Label validation and Update field paths (`labels`, `labels.<k>`). Input, one per line:
//! `c k=v` (a current label), `r k=v` (a requested label), `p <path>` (an update path).

use strata_core::labels::{Labels, MAX_LABEL_SIZE, apply_update, validate, validate_pair};

/// The parsed input: current labels, requested labels and update paths.
#[derive(Default)]
struct Update {
    current: Labels,
    requested: Labels,
    paths: Vec<String>,
}

fn parse(input: &str) -> Update {
    let mut u = Update::default();
    for line in input.split('\n') {
        let (kind, rest) = match (line.get(..2), line.get(2..)) {
            (Some(kind), Some(rest)) => (kind, rest),
            _ => continue,
        };
        let pair = || {
            let (k, v) = rest.split_once('=').unwrap_or((rest, ""));
            (k.to_owned(), v.to_owned())
        };
        match kind {
            "c " => u.current.extend([pair()]),
            "r " => u.requested.extend([pair()]),
            "p " => u.paths.push(rest.to_owned()),
            _ => {}
        }
    }
    u
}

pub fn check(data: &[u8]) {
    let Some(input) = crate::text(data) else {
        return;
    };
    let u = parse(input);
    for (k, v) in u.current.iter().chain(&u.requested) {
        assert_eq!(
            validate_pair(k, v).is_ok(),
            k.len() + v.len() <= MAX_LABEL_SIZE
        );
    }
    let bad_path = u
        .paths
        .iter()
        .find(|p| *p != "labels" && !p.starts_with("labels."));
    match apply_update(&u.current, &u.requested, &u.paths, "fuzz") {
        Ok(got) => {
            assert!(bad_path.is_none(), "{bad_path:?} accepted");
            assert!(validate(&got).is_ok());
            assert!(got.values().all(|v| !v.is_empty()), "an empty value stored");
            assert_eq!(got, expected(&u), "{input:?}");
        }
        Err(e) if bad_path.is_some() => {
            assert!(e.0.starts_with("cannot update ") || e.0.starts_with("label key"));
        }
        Err(e) => assert!(e.0.starts_with("label key and value greater than maximum size")),
    }
}

/// What containerd stores, computed independently: paths apply in order over the current map
/// (all of it replaced when there are none); empty values are dropped at the end.
fn expected(u: &Update) -> Labels {
    let mut out = if u.paths.is_empty() {
        u.requested.clone()
    } else {
        u.current.clone()
    };
    for p in &u.paths {
        if p == "labels" {
            out = u.requested.clone();
        } else if let Some(k) = p.strip_prefix("labels.") {
            match u.requested.get(k) {
                Some(v) => out.insert(k.to_owned(), v.clone()),
                None => out.remove(k),
            };
        }
    }
    out.retain(|_, v| !v.is_empty());
    out
}
