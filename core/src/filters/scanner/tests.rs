//! containerd's `TestScanner` cases (`filters/scanner_test.go`).

use super::{Scanner, Token};
use Token::*;

/// (start, token, text, scanner error for illegal tokens)
type Expected<'a> = (usize, Token, &'a str, &'a str);

fn check(input: &str, expected: &[Expected<'_>]) {
    let mut sc = Scanner::new(input);
    for (i, want) in expected.iter().enumerate() {
        let (pos, tok, text) = sc.scan();
        let err = if tok == Illegal { sc.err.as_str() } else { "" };
        assert_eq!((pos, tok, text, err), *want, "input {input:?}, token {i}");
    }
    assert_eq!(sc.scan().1, Eof, "input {input:?} must be consumed");
}

#[test]
fn field() {
    check("name", &[(0, Field, "name", ""), (4, Eof, "", "")]);
}

#[test]
fn selectors_with_operators() {
    check(
        "name==value,foo!=bar",
        &[
            (0, Field, "name", ""),
            (4, Operator, "==", ""),
            (6, Value, "value", ""),
            (11, Separator, ",", ""),
            (12, Field, "foo", ""),
            (15, Operator, "!=", ""),
            (17, Value, "bar", ""),
            (20, Eof, "", ""),
        ],
    );
}

#[test]
fn selectors_with_field_paths() {
    check(
        "name==value,labels.foo=value,other.bar~=match",
        &[
            (0, Field, "name", ""),
            (4, Operator, "==", ""),
            (6, Value, "value", ""),
            (11, Separator, ",", ""),
            (12, Field, "labels", ""),
            (18, Separator, ".", ""),
            (19, Field, "foo", ""),
            (22, Operator, "=", ""),
            (23, Value, "value", ""),
            (28, Separator, ",", ""),
            (29, Field, "other", ""),
            (34, Separator, ".", ""),
            (35, Field, "bar", ""),
            (38, Operator, "~=", ""),
            (40, Value, "match", ""),
            (45, Eof, "", ""),
        ],
    );
}

#[test]
fn regexp_values() {
    check(
        "name~=[abc]+,foo=test",
        &[
            (0, Field, "name", ""),
            (4, Operator, "~=", ""),
            (6, Value, "[abc]+", ""),
            (12, Separator, ",", ""),
            (13, Field, "foo", ""),
            (16, Operator, "=", ""),
            (17, Value, "test", ""),
            (21, Eof, "", ""),
        ],
    );
    check(
        r"name~=[abc]\+,foo=test",
        &[
            (0, Field, "name", ""),
            (4, Operator, "~=", ""),
            (6, Value, r"[abc]\+", ""),
            (13, Separator, ",", ""),
            (14, Field, "foo", ""),
            (17, Operator, "=", ""),
            (18, Value, "test", ""),
            (22, Eof, "", ""),
        ],
    );
    check(
        "name~=/[abc]{0,2}/,foo=test",
        &[
            (0, Field, "name", ""),
            (4, Operator, "~=", ""),
            (6, Quoted, "/[abc]{0,2}/", ""),
            (18, Separator, ",", ""),
            (19, Field, "foo", ""),
            (22, Operator, "=", ""),
            (23, Value, "test", ""),
            (27, Eof, "", ""),
        ],
    );
}

#[test]
fn cowsay() {
    check(
        "name~=牛,labels.moo=true",
        &[
            (0, Field, "name", ""),
            (4, Operator, "~=", ""),
            (6, Value, "牛", ""),
            (9, Separator, ",", ""),
            (10, Field, "labels", ""),
            (16, Separator, ".", ""),
            (17, Field, "moo", ""),
            (20, Operator, "=", ""),
            (21, Value, "true", ""),
            (25, Eof, "", ""),
        ],
    );
    check(
        "name~=|牛|,labels.moo=true",
        &[
            (0, Field, "name", ""),
            (4, Operator, "~=", ""),
            (6, Quoted, "|牛|", ""),
            (11, Separator, ",", ""),
            (12, Field, "labels", ""),
            (18, Separator, ".", ""),
            (19, Field, "moo", ""),
            (22, Operator, "=", ""),
            (23, Value, "true", ""),
            (27, Eof, "", ""),
        ],
    );
}

#[test]
fn escapes() {
    check(
        r#"name~="asdf\n\tfooo""#,
        &[
            (0, Field, "name", ""),
            (4, Operator, "~=", ""),
            (6, Quoted, r#""asdf\n\tfooo""#, ""),
            (20, Eof, "", ""),
        ],
    );
}

#[test]
fn null_input() {
    check(
        "foo\x00bar",
        &[
            (0, Field, "foo", ""),
            (3, Illegal, "", "unexpected null"),
            (4, Field, "bar", ""),
            (7, Eof, "", ""),
        ],
    );
}

#[test]
fn spaces_chomped_and_partial_input() {
    check(
        "foo = bar    ",
        &[
            (0, Field, "foo", ""),
            (4, Operator, "=", ""),
            (6, Value, "bar", ""),
            (13, Eof, "", ""),
        ],
    );
    check(
        "interrupted=",
        &[
            (0, Field, "interrupted", ""),
            (11, Operator, "=", ""),
            (12, Eof, "", ""),
        ],
    );
    check(
        "doublevalue=value value",
        &[
            (0, Field, "doublevalue", ""),
            (11, Operator, "=", ""),
            (12, Value, "value", ""),
            (18, Field, "value", ""),
            (23, Eof, "", ""),
        ],
    );
}

#[test]
fn values_punctuated_and_leading_quoted() {
    check(
        "compound.labels==punctuated_value.foo-bar",
        &[
            (0, Field, "compound", ""),
            (8, Separator, ".", ""),
            (9, Field, "labels", ""),
            (15, Operator, "==", ""),
            (17, Value, "punctuated_value.foo-bar", ""),
            (41, Eof, "", ""),
        ],
    );
    check(
        r#""leading quote".postquote==value"#,
        &[
            (0, Quoted, r#""leading quote""#, ""),
            (15, Separator, ".", ""),
            (16, Field, "postquote", ""),
            (25, Operator, "==", ""),
            (27, Value, "value", ""),
            (32, Eof, "", ""),
        ],
    );
}

#[test]
fn missing_value_and_quoted_regexps() {
    check(
        "input==,id!=ff",
        &[
            (0, Field, "input", ""),
            (5, Operator, "==", ""),
            (7, Separator, ",", ""),
            (8, Field, "id", ""),
            (10, Operator, "!=", ""),
            (12, Value, "ff", ""),
            (14, Eof, "", ""),
        ],
    );
    check(
        r"input~=/foo\/bar/,id!=ff",
        &[
            (0, Field, "input", ""),
            (5, Operator, "~=", ""),
            (7, Quoted, r"/foo\/bar/", ""),
            (17, Separator, ",", ""),
            (18, Field, "id", ""),
            (20, Operator, "!=", ""),
            (22, Value, "ff", ""),
            (24, Eof, "", ""),
        ],
    );
    check(
        "input~=|foo/bar|,id!=ff",
        &[
            (0, Field, "input", ""),
            (5, Operator, "~=", ""),
            (7, Quoted, "|foo/bar|", ""),
            (16, Separator, ",", ""),
            (17, Field, "id", ""),
            (19, Operator, "!=", ""),
            (21, Value, "ff", ""),
            (23, Eof, "", ""),
        ],
    );
}

#[test]
fn illegal_quoted() {
    let unterminated = "quoted literal not terminated";
    check(
        "labels.containerd.io/key==value",
        &[
            (0, Field, "labels", ""),
            (6, Separator, ".", ""),
            (7, Field, "containerd", ""),
            (17, Separator, ".", ""),
            (18, Field, "io", ""),
            (20, Illegal, "/key==value", unterminated),
            (31, Eof, "", ""),
        ],
    );
    check(
        "labels.\"containerd.io\nkey\"==value",
        &[
            (0, Field, "labels", ""),
            (6, Separator, ".", ""),
            (7, Illegal, "\"containerd.io\n", unterminated),
            (22, Field, "key", ""),
            (25, Illegal, "\"==value", unterminated),
            (33, Eof, "", ""),
        ],
    );
}

#[test]
fn illegal_escapes() {
    check(
        r#"labels."\g""#,
        &[
            (0, Field, "labels", ""),
            (6, Separator, ".", ""),
            (7, Illegal, r#""\g""#, "illegal escape sequence"),
            (11, Eof, "", ""),
        ],
    );
    check(
        r#"labels."\xaz""#,
        &[
            (0, Field, "labels", ""),
            (6, Separator, ".", ""),
            (7, Illegal, r#""\xaz""#, "illegal numeric escape sequence"),
            (13, Eof, "", ""),
        ],
    );
}

#[test]
fn replacement_character_is_illegal() {
    check(
        "a\u{FFFD}",
        &[
            (0, Field, "a", ""),
            (1, Illegal, "", "rune error"),
            (4, Eof, "", ""),
        ],
    );
}
