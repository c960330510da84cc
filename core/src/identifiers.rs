//! containerd's identifier rules (`identifiers/validate.go`): namespace names and container ids
//! are `[A-Za-z0-9]+` runs joined by single `.`, `_` or `-`, at most 76 characters.

/// Longest identifier containerd accepts.
pub const MAX_LENGTH: usize = 76;

/// A rejected identifier; the message is containerd's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidIdentifier(pub String);

/// Checks `s` against containerd's identifier grammar.
pub fn validate(s: &str) -> Result<(), InvalidIdentifier> {
    if s.is_empty() {
        return Err(InvalidIdentifier("identifier must not be empty".into()));
    }
    if s.len() > MAX_LENGTH {
        return Err(InvalidIdentifier(format!(
            "identifier {s:?} greater than maximum length ({MAX_LENGTH} characters)"
        )));
    }
    if !matches_grammar(s.as_bytes()) {
        return Err(InvalidIdentifier(format!(
            "identifier {s:?} must match ^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$"
        )));
    }
    Ok(())
}

/// Alphanumeric runs separated by exactly one separator, starting and ending alphanumeric.
fn matches_grammar(s: &[u8]) -> bool {
    let mut prev_alnum = false;
    for &b in s {
        if b.is_ascii_alphanumeric() {
            prev_alnum = true;
        } else if matches!(b, b'.' | b'_' | b'-') && prev_alnum {
            prev_alnum = false;
        } else {
            return false;
        }
    }
    prev_alnum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_containerd_identifiers() {
        for ok in [
            "default",
            "k8s.io",
            "a",
            "A-b_c.d",
            "0",
            "x1-2",
            &"a".repeat(76),
        ] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_what_containerd_rejects() {
        for bad in [
            "",
            "-a",
            "a-",
            "a..b",
            "a.-b",
            "a b",
            "a/b",
            "ä",
            &"a".repeat(77),
        ] {
            assert!(validate(bad).is_err(), "{bad}");
        }
        assert_eq!(validate("").unwrap_err().0, "identifier must not be empty");
    }
}
