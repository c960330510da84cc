//! containerd's label rules (`labels/validate.go`, `boltutil.WriteLabels`, the Update masks).
//!
//! CONTRACT (implement):
//! - a key+value pair over 4096 bytes is invalid, message
//!   `label key and value greater than maximum size (4096 bytes), key: <first 10 chars of key>`;
//! - empty values delete; stored label maps never hold an empty value;
//! - Update masks: no paths ⇒ replace all; `labels` ⇒ replace all; `labels.<k>` (k = everything
//!   after the first `labels.`) ⇒ set k to the new value, or delete it when absent/empty in the
//!   new map; any other path ⇒ error `cannot update "<path>" field on <what>`.

use std::collections::BTreeMap;

use crate::goquote::quote;

/// A label map (ordered, so records serialise deterministically).
pub type Labels = BTreeMap<String, String>;

/// Largest key+value length containerd accepts for one label.
pub const MAX_LABEL_SIZE: usize = 4096;

/// How many bytes of an oversized key the error message shows (containerd's `k[:10]`).
const KEY_PREFIX_IN_ERROR: usize = 10;

/// A rejected label or update path; the message is containerd's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidLabels(pub String);

/// Checks every pair against [`MAX_LABEL_SIZE`].
pub fn validate(labels: &Labels) -> Result<(), InvalidLabels> {
    labels.iter().try_for_each(|(k, v)| validate_pair(k, v))
}

/// Checks one pair against [`MAX_LABEL_SIZE`] (containerd's `labels.Validate`).
pub fn validate_pair(key: &str, value: &str) -> Result<(), InvalidLabels> {
    if key.len() + value.len() <= MAX_LABEL_SIZE {
        return Ok(());
    }
    // Go slices bytes; a cut inside a character shows as U+FFFD rather than panicking.
    let shown = &key.as_bytes()[..key.len().min(KEY_PREFIX_IN_ERROR)];
    Err(InvalidLabels(format!(
        "label key and value greater than maximum size ({MAX_LABEL_SIZE} bytes), key: {}",
        String::from_utf8_lossy(shown)
    )))
}

/// Drops pairs whose value is empty (an empty value means "delete").
pub fn without_empty(mut labels: Labels) -> Labels {
    labels.retain(|_, v| !v.is_empty());
    labels
}

/// Applies an Update to `current` given the request's labels and field paths, as containerd does.
/// `what` names the record in errors ("snapshot", "content info"). Validates the result.
///
/// The first path that is neither `labels` nor `labels.<k>` fails the whole update. The merged
/// map is validated before empty values are dropped, as containerd's metadata layer does.
pub fn apply_update(
    current: &Labels,
    requested: &Labels,
    paths: &[String],
    what: &str,
) -> Result<Labels, InvalidLabels> {
    let mut updated = if paths.is_empty() {
        requested.clone()
    } else {
        current.clone()
    };
    for path in paths {
        apply_path(&mut updated, requested, path, what)?;
    }
    validate(&updated)?;
    Ok(without_empty(updated))
}

fn apply_path(
    updated: &mut Labels,
    requested: &Labels,
    path: &str,
    what: &str,
) -> Result<(), InvalidLabels> {
    if let Some(key) = path.strip_prefix("labels.") {
        let value = requested.get(key).cloned().unwrap_or_default();
        updated.insert(key.to_owned(), value);
        return Ok(());
    }
    if path == "labels" {
        *updated = requested.clone();
        return Ok(());
    }
    Err(InvalidLabels(format!(
        "cannot update {} field on {what}",
        quote(path)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn paths(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    fn current() -> Labels {
        labels(&[("l1", "v1"), ("l2", "v2"), ("l3", "v3")])
    }

    #[test]
    fn check_update_masks_set_delete_and_ignore() {
        // containerd's snapshot testsuite `checkUpdate`.
        let req = labels(&[("l1", "updated"), ("l4", "v4")]);
        let got = apply_update(&current(), &req, &paths(&["labels.l1", "labels.l2"]), "x");
        assert_eq!(got.unwrap(), labels(&[("l1", "updated"), ("l3", "v3")]));
    }

    #[test]
    fn no_paths_replace_all() {
        let req = labels(&[("l1", "v1"), ("l2", "v2"), ("l3", "v3")]);
        let got = apply_update(&labels(&[("old", "x")]), &req, &[], "snapshot").unwrap();
        assert_eq!(got, req);
    }

    #[test]
    fn labels_path_replaces_all() {
        let req = labels(&[("l4", "v4"), ("empty", "")]);
        let got = apply_update(&current(), &req, &paths(&["labels"]), "snapshot").unwrap();
        assert_eq!(got, labels(&[("l4", "v4")]));
    }

    #[test]
    fn empty_value_in_mask_deletes() {
        let req = labels(&[("l3", "")]);
        let got = apply_update(&current(), &req, &paths(&["labels.l3"]), "x").unwrap();
        assert_eq!(got, labels(&[("l1", "v1"), ("l2", "v2")]));
    }

    #[test]
    fn key_is_everything_after_first_labels_prefix() {
        let key = "containerd.io/gc.ref.content.labels.x";
        let req = labels(&[(key, "sha256:abc")]);
        let path = format!("labels.{key}");
        let got = apply_update(&Labels::new(), &req, &[path], "x").unwrap();
        assert_eq!(got, labels(&[(key, "sha256:abc")]));
        let got = apply_update(&Labels::new(), &req, &paths(&["labels.labels.a"]), "x").unwrap();
        assert!(
            got.is_empty(),
            "the key `labels.a` is absent from the request"
        );
    }

    #[test]
    fn whole_map_and_key_paths_combine() {
        let req = labels(&[("l1", "n1"), ("l9", "v9")]);
        let mixed = paths(&["labels.l2", "labels"]);
        assert_eq!(apply_update(&current(), &req, &mixed, "x").unwrap(), req);
        let mixed = paths(&["labels", "labels.l2"]);
        assert_eq!(apply_update(&current(), &req, &mixed, "x").unwrap(), req);
    }

    #[test]
    fn other_paths_are_rejected() {
        for p in ["parent", "name", "label", "labels_x", ""] {
            let err =
                apply_update(&current(), &Labels::new(), &paths(&[p]), "snapshot").unwrap_err();
            assert_eq!(err.0, format!("cannot update \"{p}\" field on snapshot"));
        }
        let err = apply_update(
            &current(),
            &Labels::new(),
            &paths(&["labels.l1", "size"]),
            "content info \"sha256:x\"",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"cannot update "size" field on content info "sha256:x""#
        );
    }

    #[test]
    fn size_limit_is_key_plus_value() {
        let at_limit = labels(&[("k", &"v".repeat(MAX_LABEL_SIZE - 1))]);
        assert!(validate(&at_limit).is_ok());
        let over = labels(&[("keykeykeykeykey", &"v".repeat(MAX_LABEL_SIZE))]);
        assert_eq!(
            validate(&over).unwrap_err().0,
            "label key and value greater than maximum size (4096 bytes), key: keykeykeyk"
        );
        let short_key = labels(&[("abc", &"v".repeat(MAX_LABEL_SIZE))]);
        assert!(validate(&short_key).unwrap_err().0.ends_with("key: abc"));
    }

    #[test]
    fn update_validates_result() {
        let big = "v".repeat(MAX_LABEL_SIZE);
        let req = labels(&[("l1", &big)]);
        let err = apply_update(&current(), &req, &paths(&["labels.l1"]), "x").unwrap_err();
        assert!(
            err.0
                .starts_with("label key and value greater than maximum size")
        );
        // A key that is not in the mask is ignored, even if oversized.
        let ok = apply_update(&current(), &req, &paths(&["labels.l2"]), "x").unwrap();
        assert_eq!(ok, labels(&[("l1", "v1"), ("l3", "v3")]));
    }

    #[test]
    fn without_empty_drops_only_empty_values() {
        let got = without_empty(labels(&[("a", ""), ("b", "x"), ("c", " ")]));
        assert_eq!(got, labels(&[("b", "x"), ("c", " ")]));
    }

    #[test]
    fn oversized_multibyte_key_does_not_panic() {
        let key = "é".repeat(20);
        let err = validate_pair(&key, &"v".repeat(MAX_LABEL_SIZE)).unwrap_err();
        assert!(err.0.ends_with(&"é".repeat(5)));
    }
}
