//! containerd identifiers: `validate` agrees with containerd's regular expression and length.

use std::sync::LazyLock;

use strata_core::identifiers::{MAX_LENGTH, validate};

static GRAMMAR: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$").unwrap());

pub fn check(data: &[u8]) {
    let Some(input) = crate::text(data) else {
        return;
    };
    let want = !input.is_empty() && input.len() <= MAX_LENGTH && GRAMMAR.is_match(input);
    let got = validate(input);
    assert_eq!(got.is_ok(), want, "{input:?}: {got:?}");
}
