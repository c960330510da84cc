//! The caps on a filter request (issue 13): selectors, regular expressions, pattern bytes and
//! compiled size. Each over-limit filter is rejected quickly with a message naming the limit.

use std::time::{Duration, Instant};

use crate::filters::{Filter, MAX_PATTERN_BYTES, ParseError, parse, parse_all};

/// A pattern whose compiled program is large (hundreds of KiB): Unicode classes, repeated.
const BIG: &str = r"\pL{40}\pN{40}";

/// Runs `f`, asserting it finished within two seconds (compiling the [`MAX_REGEXES`] allowed
/// before the cap takes a few hundred milliseconds).
///
/// [`MAX_REGEXES`]: crate::filters::MAX_REGEXES
fn quickly<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    let took = start.elapsed();
    assert!(took < Duration::from_secs(2), "{what} took {took:?}");
    out
}

/// The message of `r`, which must be a short parse error.
fn rejected(what: &str, r: Result<Filter, ParseError>) -> String {
    match r {
        Ok(_) => panic!("{what}: accepted"),
        Err(e) => {
            assert!(e.0.starts_with("filters: parse error: "), "{what}: {e}");
            assert!(e.0.len() < 512, "{what}: message of {} bytes", e.0.len());
            e.0
        }
    }
}

#[test]
fn too_many_selectors_in_one_filter() {
    let input: Vec<String> = (0..2000).map(|i| format!("labels.a{i}==x")).collect();
    let input = input.join(",");
    let err = rejected(
        "2000 selectors",
        quickly("2000 selectors", || parse(&input)),
    );
    assert!(err.contains("too many selectors"), "{err}");
}

#[test]
fn too_many_selectors_across_filters() {
    let inputs: Vec<String> = (0..2000).map(|i| format!("labels.a{i}==x")).collect();
    let err = rejected(
        "2000 filters",
        quickly("2000 filters", || parse_all(&inputs)),
    );
    assert!(err.contains("too many selectors"), "{err}");
    let empties = vec![String::new(); 100_000];
    let err = rejected(
        "empty filters",
        quickly("empty filters", || parse_all(&empties)),
    );
    assert!(err.contains("too many selectors"), "{err}");
}

#[test]
fn too_many_regexps() {
    let inputs: Vec<String> = (0..2000).map(|i| format!("labels.a{i}~={BIG}")).collect();
    let err = rejected(
        "2000 regexps",
        quickly("2000 regexps", || parse_all(&inputs)),
    );
    assert!(err.contains("too many regular expressions"), "{err}");
    let one = inputs.join(",");
    let err = rejected("2000 regexps", quickly("2000 regexps", || parse(&one)));
    assert!(err.contains("too many regular expressions"), "{err}");
}

#[test]
fn over_long_pattern() {
    let input = format!("name~={}", "a".repeat(100_000));
    let err = rejected("long pattern", quickly("long pattern", || parse(&input)));
    assert!(err.contains("regexp of 100000 bytes for name"), "{err}");
    assert!(err.contains("longer than the limit"), "{err}");
    let at_limit = format!("name~={}", "a".repeat(MAX_PATTERN_BYTES));
    assert!(parse(&at_limit).is_ok());
}

#[test]
fn pattern_compiling_too_large() {
    let input = format!("labels.big~={}", BIG.repeat(8));
    let err = rejected("big regexp", quickly("big regexp", || parse(&input)));
    assert!(err.contains("regexp for labels.big"), "{err}");
    assert!(err.contains("compiled size limit"), "{err}");
}

#[test]
fn realistic_filters_still_parse() {
    let f = parse(r#"name~=^docker\.io/library/.*$,labels."containerd.io/gc.root",kind==active"#);
    assert!(f.is_ok(), "{f:?}");
    // Unicode `\w`: about 3 MiB compiled, within the limit.
    let f = parse(r#"labels.x~="^\\w{1,64}$""#);
    assert!(f.is_ok(), "{f:?}");
    assert!(parse(&format!("name~={BIG}")).is_ok());
}
