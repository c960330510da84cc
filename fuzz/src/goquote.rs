//! Go quoting and unquoting, round trip: a label key and value quoted by
//! `strata_core::goquote::quote` (Go's `strconv.Quote`) and unquoted by the filter parser
//! (containerd's `strconv.Unquote`) select exactly that label. Input: `key\0value` (or the same
//! text for both).

use strata_core::filters::parse;
use strata_core::goquote::quote;
use strata_core::labels::Labels;

use crate::Record;

pub fn check(data: &[u8]) {
    let Some(input) = crate::text(data) else {
        return;
    };
    // Go's scanner rejects U+FFFD (utf8.RuneError) anywhere in a filter, quoted or not, and
    // `quote` keeps it (it is printable), so such a label cannot be named in a filter.
    if input.contains(char::REPLACEMENT_CHARACTER) {
        return;
    }
    let (key, value) = input.split_once('\0').unwrap_or((input, input));
    let quoted = quote(value);
    assert!(quoted.starts_with('"') && quoted.ends_with('"') && quoted.len() >= 2);
    let eq = format!("labels.{}=={}", quote(key), quoted);
    let ne = format!("labels.{}!={}", quote(key), quoted);
    let present = format!("labels.{}", quote(key));
    let with = |v: &str| -> Labels { [(key.to_owned(), v.to_owned())].into_iter().collect() };
    let same = with(value);
    let other = with(&format!("{value}x"));
    let rec = |labels| Record { name: "n", labels };
    for (filter, labels, want) in [
        (&eq, &same, true),
        (&eq, &other, false),
        (&ne, &same, false),
        (&ne, &other, true),
        (&present, &same, true),
        (&present, &Labels::new(), false),
    ] {
        let parsed = parse(filter).unwrap_or_else(|e| panic!("{filter:?} does not parse: {e}"));
        assert_eq!(
            parsed.matches(&rec(labels)),
            want,
            "{filter:?} on {labels:?}"
        );
    }
}
