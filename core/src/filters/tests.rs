//! containerd's `TestFilters` (`filters/filter_test.go`), the snapshot testsuite's `checkWalk`
//! filters, and the edge cases of `selector.Match`.

use std::collections::BTreeMap;

use super::{Adaptor, parse, parse_all};

/// containerd's test entry and its map-based adaptor (`labels.<k…>` joins the rest with `.`).
#[derive(Debug, Clone, PartialEq, Default)]
struct Entry {
    name: &'static str,
    other: &'static str,
    labels: BTreeMap<String, String>,
}

impl Adaptor for Entry {
    fn field(&self, path: &[String]) -> Option<String> {
        let present = |v: &str| (!v.is_empty()).then(|| v.to_owned());
        match path.first().map(String::as_str) {
            Some("name") => present(self.name),
            Some("other") => present(self.other),
            Some("labels") => self.labels.get(&path[1..].join(".")).cloned(),
            _ => None,
        }
    }
}

fn entry(name: &'static str, other: &'static str, labels: &[(&str, &str)]) -> Entry {
    let labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Entry {
        name,
        other,
        labels,
    }
}

fn corpus() -> Vec<Entry> {
    vec![
        entry("foo", "", &[("foo", "true")]),
        entry("bar", "", &[]),
        entry(
            "foo",
            "",
            &[("foo", "present"), ("more complex label", "present")],
        ),
        entry("bar", "", &[("bar", "true")]),
        entry(
            "fooer",
            "",
            &[("more complex label with \\ and \"", "present")],
        ),
        entry(
            "fooer",
            "",
            &[("more complex label with \\ and \".post", "present")],
        ),
        entry("baz", "too complex, yo", &[]),
        entry("bazo", "abc", &[]),
        entry("compound", "", &[("foo", "omg_asdf.asdf-qwer")]),
    ]
}

/// Indexes of the corpus entries `input` selects.
fn selected(input: &str) -> Vec<usize> {
    let filter = parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
    let corpus = corpus();
    (0..corpus.len())
        .filter(|&i| filter.matches(&corpus[i]))
        .collect()
}

fn parse_error(input: &str) -> String {
    parse(input).expect_err(input).to_string()
}

#[test]
fn empty_and_present_match_everything() {
    assert_eq!(selected(""), (0..9).collect::<Vec<_>>());
    assert_eq!(selected("name"), (0..9).collect::<Vec<_>>());
}

#[test]
fn label_present() {
    assert_eq!(selected("labels.foo"), [0, 2, 8]);
    assert_eq!(selected("labels.foo,name"), [0, 2, 8]);
}

#[test]
fn label_value() {
    assert_eq!(selected("labels.foo==true"), [0]);
    assert_eq!(selected("labels.foo==omg_asdf.asdf-qwer"), [8]);
}

#[test]
fn name_equal_and_not_equal() {
    assert_eq!(selected("name==bar"), [1, 3]);
    assert_eq!(selected("name!=bar"), [0, 2, 4, 5, 6, 7, 8]);
    assert_eq!(selected("name==bar,labels.bar"), [3]);
}

#[test]
fn quoted_value() {
    assert_eq!(selected("other==\"too complex, yo\""), [6]);
}

#[test]
fn regexp_values() {
    assert_eq!(selected("other~=[abc]+,name!=foo"), [6, 7]);
    assert_eq!(selected("other~=/[abc]+/,name!=foo"), [6, 7]);
    assert_eq!(selected("other~=/[abc]{1,2}/,name!=foo"), [6, 7]);
    assert!(selected("other~=/[abc]{0,1}\"\\//,name!=foo").is_empty());
}

#[test]
fn name_and_label_value() {
    assert_eq!(selected("name==bar,labels.bar==true"), [3]);
    assert!(selected("name==bar,labels.bar==wrong").is_empty());
}

#[test]
fn quoted_field_paths() {
    assert_eq!(selected(r#"name==foo,labels."more complex label""#), [2]);
    assert_eq!(
        selected(r#"labels."more complex label with \\ and \""==present"#),
        [4]
    );
    assert_eq!(
        selected(r#"labels."more complex label with \\ and \"".post==present"#),
        [5]
    );
}

#[test]
fn go_error_messages() {
    let cases = [
        (
            "labels.|foo|==omg_asdf.asdf-qwer",
            "filters: parse error: [labels. >|||< foo|==omg_asdf.asdf-qwer]: invalid quote encountered",
        ),
        (
            r#"labels.?"more complex label with \\ and \"".post==present"#,
            r#"filters: parse error: [labels. >|?|< "more complex label with \\ and \"".post==present]: expected field or quoted"#,
        ),
        (
            "name==foo,",
            "filters: parse error: [name==foo,]: expected field or quoted",
        ),
        (
            "labels.",
            "filters: parse error: [labels.]: expected field or quoted",
        ),
        (
            "image~=,id?=?fbaq",
            "filters: parse error: [image~= >|,|< id?=?fbaq]: expected value or quoted",
        ),
        (
            "labels.ns/key==value",
            "filters: parse error: [labels.ns >|/|< key==value]: quoted literal not terminated",
        ),
        (
            "labels.key==/value",
            "filters: parse error: [labels.key== >|/|< value]: quoted literal not terminated",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(parse_error(input), want, "{input:?}");
    }
}

#[test]
fn more_parse_errors() {
    // Verified against containerd 1.6.20 (see `golden.rs` for the full table).
    let cases = [
        (
            "name===x",
            r#"[name >|=|< ==x]: unsupported operator "===""#,
        ),
        (
            "name x",
            r#"[name  >|x|< ]: expected an operator ("=="|"!="|"~=")"#,
        ),
        ("name==a b", "[name==a >| |< b]: unexpected input:  "),
        ("name \x00", "[name  >|\x00|< ]: unexpected null"),
        ("name~=.", "[name~= >|.|< ]: expected value or quoted"),
        ("name==|x|", "[name== >|||< x|]: invalid quote encountered"),
        (
            "name~=/a\\d/",
            "[name~= >|/|< a\\d/]: illegal escape sequence",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(parse_error(input), format!("filters: parse error: {want}"));
    }
}

#[test]
fn invalid_regexp_is_a_parse_error() {
    let err = parse_error("name~=[abc");
    assert!(
        err.starts_with(
            r#"filters: parse error: [name~= >|[|< abc]: error parsing regexp "[abc": "#
        ),
        "{err}"
    );
    assert!(!err.contains('\n'));
    assert!(parse("name~=\"\\xff\"").is_err(), "invalid UTF-8 pattern");
}

#[test]
fn unicode_and_alt_quoted_regexps() {
    let e = entry("牛-cow", "", &[("path", "/usr/bin|x")]);
    assert!(parse("name~=牛").unwrap().matches(&e));
    assert!(parse("name~=|^牛-|").unwrap().matches(&e));
    assert!(parse(r"labels.path~=/^\/usr\/bin/").unwrap().matches(&e));
    assert!(parse(r"labels.path~=|bin\|x$|").unwrap().matches(&e));
    assert!(parse(r#"labels.path~="^/usr""#).unwrap().matches(&e));
    assert!(!parse("name~=^cow").unwrap().matches(&e));
}

#[test]
fn absent_fields() {
    let e = entry("", "", &[]);
    // `!=` compares the absent field as "": true unless the value itself is empty.
    assert!(parse("name!=x").unwrap().matches(&e));
    assert!(!parse("name!=\"\"").unwrap().matches(&e));
    assert!(!parse("name==\"\"").unwrap().matches(&e));
    assert!(!parse("name").unwrap().matches(&e));
    // `~=` tests the regular expression against "".
    assert!(parse("name~=^$").unwrap().matches(&e));
    assert!(!parse("name~=[.]").unwrap().matches(&e));
}

#[test]
fn escaped_values_and_whitespace() {
    let e = entry("a\tb", "x", &[]);
    assert!(parse(r#"name=="a\tb""#).unwrap().matches(&e));
    assert!(parse(r#"name=="a\x09b""#).unwrap().matches(&e));
    assert!(parse(r#"name=="a\011b""#).unwrap().matches(&e));
    assert!(parse(r#"name=="a\u0009b""#).unwrap().matches(&e));
    assert!(parse(" name == \"a\\tb\",other").unwrap().matches(&e));
    assert!(!parse(r#"name=="\xff""#).unwrap().matches(&e));
    assert!(parse(r#"name!="\xff""#).unwrap().matches(&e));
}

#[test]
fn unquoted_values_take_punctuation() {
    let e = entry("a=b!c~d.e:f/g", "", &[]);
    assert!(parse("name==a=b!c~d.e:f/g").unwrap().matches(&e));
}

#[test]
fn parse_all_is_or() {
    let f = parse_all(&["name==foo", "name==baz"]).unwrap();
    let corpus = corpus();
    let hits: Vec<_> = (0..9).filter(|&i| f.matches(&corpus[i])).collect();
    assert_eq!(hits, [0, 2, 6]);
}

#[test]
fn parse_all_without_filters_matches_everything() {
    let none: [&str; 0] = [];
    assert!(parse_all(&none).unwrap().is_always());
    let f = parse_all(&["", "name==nothing"]).unwrap();
    assert!(f.is_always());
    assert!(f.matches(&entry("x", "", &[])));
    assert!(!parse_all(&["name==x"]).unwrap().is_always());
}

#[test]
fn parse_all_reports_the_failing_filter() {
    let err = parse_all(&["name==ok", "name==/abs"]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "filters: parse error: [name== >|/|< abs]: quoted literal not terminated"
    );
}

mod golden;
mod limits;
mod snapshots;
