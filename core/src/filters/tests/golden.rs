//! Golden cases recorded from containerd 1.6.20's own `filters.Parse` (Go 1.19): for each
//! input, either the exact error message or which of the five records below match.

use std::collections::BTreeMap;

use crate::filters::{Adaptor, parse};

/// A record as a flat map from the dotted field path (`labels.l`) to its value.
struct Flat(BTreeMap<&'static str, &'static str>);

impl Adaptor for Flat {
    fn field(&self, path: &[String]) -> Option<String> {
        self.0.get(path.join(".").as_str()).map(|v| v.to_string())
    }
}

fn records() -> Vec<Flat> {
    let rec = |pairs: &[(&'static str, &'static str)]| Flat(pairs.iter().copied().collect());
    vec![
        rec(&[]),
        rec(&[("name", "a\tb"), ("other", "x")]),
        rec(&[("name", "a=b!c~d.e:f/g")]),
        rec(&[
            ("name", "牛"),
            ("kind", "active"),
            ("parent", ""),
            ("labels.containerd.io/gc.root", "check-walk"),
            ("labels.l", "2"),
        ]),
        rec(&[
            ("name", "p"),
            ("kind", "committed"),
            ("parent", "base"),
            ("labels.a b", "x,y"),
            ("labels.\\\"", "q"),
        ]),
    ]
}

/// `Ok(mask)`: record `i` matches iff `mask[i] == '1'`; `Err(msg)`: containerd's message.
const GOLDEN: &[(&str, Result<&str, &str>)] = &[
    (
        "name===x",
        Err("filters: parse error: [name >|=|< ==x]: unsupported operator \"===\""),
    ),
    (
        "name=x",
        Err("filters: parse error: [name >|=|< x]: unsupported operator \"=\""),
    ),
    (
        "name x",
        Err("filters: parse error: [name  >|x|< ]: expected an operator (\"==\"|\"!=\"|\"~=\")"),
    ),
    (
        "name==a b",
        Err("filters: parse error: [name==a >| |< b]: unexpected input:  "),
    ),
    (
        "name?",
        Err("filters: parse error: [name >|?|< ]: expected an operator (\"==\"|\"!=\"|\"~=\")"),
    ),
    (
        " ",
        Err("filters: parse error: [ ]: expected field or quoted"),
    ),
    (
        ",",
        Err("filters: parse error: [ >|,|< ]: expected field or quoted"),
    ),
    (
        "==x",
        Err("filters: parse error: [ >|=|< =x]: expected field or quoted"),
    ),
    (
        "name==",
        Err("filters: parse error: [name==]: expected value or quoted"),
    ),
    (
        "name \x00",
        Err("filters: parse error: [name  >|\x00|< ]: unexpected null"),
    ),
    (
        "labels.\"\\g\"",
        Err("filters: parse error: [labels. >|\"|< \\g\"]: illegal escape sequence"),
    ),
    (
        "name==\"a\\/\"",
        Err("filters: parse error: [name== >|\"|< a\\/\"]: illegal escape sequence"),
    ),
    (
        "name~=/a\\d/",
        Err("filters: parse error: [name~= >|/|< a\\d/]: illegal escape sequence"),
    ),
    (
        "name==|x|",
        Err("filters: parse error: [name== >|||< x|]: invalid quote encountered"),
    ),
    (
        " name == \"a\\tb\" , other ",
        Err("filters: parse error: [ name == \"a\\tb\" >| |< , other ]: unexpected input:  "),
    ),
    (
        " name == \"a\\tb\", other ",
        Err(
            "filters: parse error: [ name == \"a\\tb\", other ]: expected an operator (\"==\"|\"!=\"|\"~=\")",
        ),
    ),
    (
        " name == \"a\\tb\",other ",
        Err(
            "filters: parse error: [ name == \"a\\tb\",other ]: expected an operator (\"==\"|\"!=\"|\"~=\")",
        ),
    ),
    ("name!=x", Ok("11111")),
    ("name!=\"\"", Ok("01111")),
    ("name==\"\"", Ok("00000")),
    ("name~=^$", Ok("10000")),
    (
        "name~=.",
        Err("filters: parse error: [name~= >|.|< ]: expected value or quoted"),
    ),
    ("name~=\\.", Ok("00100")),
    ("name~=[.]", Ok("00100")),
    ("name==\"a\\x09b\"", Ok("01000")),
    ("name==\"a\\011b\"", Ok("01000")),
    ("name==\"a\\u0009b\"", Ok("01000")),
    ("name==\"a\\U00000009b\"", Ok("01000")),
    ("name==\"\\xff\"", Ok("00000")),
    ("name!=\"\\xff\"", Ok("11111")),
    ("name==a=b!c~d.e:f/g", Ok("00100")),
    ("name~=|bin\\|x$|", Ok("00000")),
    ("name~=\"^/usr\"", Ok("00000")),
    (
        "name==/abs",
        Err("filters: parse error: [name== >|/|< abs]: quoted literal not terminated"),
    ),
    (
        "name==/abs/",
        Err("filters: parse error: [name== >|/|< abs/]: invalid quote encountered"),
    ),
    ("name~=/abs/", Ok("00000")),
    ("labels.\"\\xff\"", Ok("00000")),
    (
        "a.\"b\"c",
        Err("filters: parse error: [a.\"b\" >|c|< ]: expected an operator (\"==\"|\"!=\"|\"~=\")"),
    ),
    (
        "a==\"b\"c",
        Err("filters: parse error: [a==\"b\" >|c|< ]: unexpected input: c"),
    ),
    (
        "a==b,",
        Err("filters: parse error: [a==b,]: expected field or quoted"),
    ),
    (
        "a,,b",
        Err("filters: parse error: [a, >|,|< b]: expected field or quoted"),
    ),
    ("a.b.c==d", Ok("00000")),
    ("\"\"", Ok("00000")),
    (
        "a==\"\\400\"",
        Err("filters: parse error: [a== >|\"|< \\400\"]: unquoting failed: quote syntax error"),
    ),
    ("name==牛", Ok("00010")),
    ("name~=牛", Ok("00010")),
    ("name~=|牛|", Ok("00010")),
    (
        "kind==active,labels.\"containerd.io/gc.root\"==check-walk",
        Ok("00010"),
    ),
    ("labels.\"containerd.io/gc.root\"==check-walk", Ok("00010")),
    (
        "labels.containerd.io/gc.root==check-walk",
        Err(
            "filters: parse error: [labels.containerd.io >|/|< gc.root==check-walk]: quoted literal not terminated",
        ),
    ),
    (
        "parent!=\"\",labels.\"containerd.io/gc.root\"==check-walk",
        Ok("00000"),
    ),
    ("parent==\"\"", Ok("00010")),
    ("parent", Ok("00011")),
    ("labels.l", Ok("00010")),
    ("labels.l==2", Ok("00010")),
    ("labels.l!=2", Ok("11101")),
    ("labels.l~=^[0-9]$", Ok("00010")),
    ("labels.\"a b\"==\"x,y\"", Ok("00001")),
    ("labels.\"a b\"==x,y", Ok("00000")),
    ("labels.\"\\\\\\\"\"", Ok("00001")),
    ("labels.\"\\\\\\\"\"==q", Ok("00001")),
    ("name,kind", Ok("00011")),
    ("name,kind==committed", Ok("00001")),
    ("kind~=/^(active|committed)$/", Ok("00011")),
    ("kind~=|^(active\\|view)$|", Ok("00010")),
    ("kind~=\"^c\"", Ok("00001")),
    ("kind~=^c", Ok("00001")),
    ("kind!=committed", Ok("11110")),
    ("kind!=committed,name", Ok("01110")),
    (
        "name==a\tb",
        Err("filters: parse error: [name==a >|\t|< b]: unexpected input: \t"),
    ),
    ("name==\"a\\tb\"", Ok("01000")),
    ("other==x,name", Ok("01000")),
    ("name!=p,kind", Ok("00010")),
    ("1name==p", Ok("00000")),
    ("_x", Ok("00000")),
    (
        "name.==p",
        Err("filters: parse error: [name. >|=|< =p]: expected field or quoted"),
    ),
    (
        "name..x",
        Err("filters: parse error: [name. >|.|< x]: expected field or quoted"),
    ),
    ("name==p==", Ok("00000")),
    ("name==p!=", Ok("00000")),
    (
        "name~=",
        Err("filters: parse error: [name~=]: expected value or quoted"),
    ),
    (
        "name!",
        Err("filters: parse error: [name >|!|< ]: unsupported operator \"!\""),
    ),
    (
        "name~~x",
        Err("filters: parse error: [name >|~|< ~x]: unsupported operator \"~~\""),
    ),
    (
        "name=!x",
        Err("filters: parse error: [name >|=|< !x]: unsupported operator \"=!\""),
    ),
    (
        "name~=/unterminated",
        Err("filters: parse error: [name~= >|/|< unterminated]: quoted literal not terminated"),
    ),
    (
        "name==\"unterminated",
        Err("filters: parse error: [name== >|\"|< unterminated]: quoted literal not terminated"),
    ),
    (
        "name==\"a\nb\"",
        Err("filters: parse error: [name== >|\"|< a\nb\"]: quoted literal not terminated"),
    ),
    ("labels.\"a\"", Ok("00000")),
    (
        "labels.\"a\"==\"\\z\"",
        Err("filters: parse error: [labels.\"a\"== >|\"|< \\z\"]: illegal escape sequence"),
    ),
    ("name==\"\\u00e9\"", Ok("00000")),
    ("name==\"\\ud800\"", Ok("00000")),
    (
        "name==\"\\x4\"",
        Err("filters: parse error: [name== >|\"|< \\x4\"]: illegal numeric escape sequence"),
    ),
    (
        "name==\"\\777\"",
        Err("filters: parse error: [name== >|\"|< \\777\"]: unquoting failed: quote syntax error"),
    ),
    (
        "name==\"\\U00110000\"",
        Err(
            "filters: parse error: [name== >|\"|< \\U00110000\"]: unquoting failed: quote syntax error",
        ),
    ),
    ("name==a\\tb", Ok("00000")),
    ("name\t==\tp", Ok("00001")),
    ("name ==p", Ok("00001")),
    ("name== p", Ok("00001")),
    (
        "name==p ,kind",
        Err("filters: parse error: [name==p >| |< ,kind]: unexpected input:  "),
    ),
    (
        ",name",
        Err("filters: parse error: [ >|,|< name]: expected field or quoted"),
    ),
    (
        "name==p,,",
        Err("filters: parse error: [name==p, >|,|< ]: expected field or quoted"),
    ),
    (
        "name;x",
        Err("filters: parse error: [name >|;|< x]: expected an operator (\"==\"|\"!=\"|\"~=\")"),
    ),
    ("name==x;y", Ok("00000")),
    ("name==x|y", Ok("00000")),
    ("name==x\"y", Ok("00000")),
    ("name==x/y", Ok("00000")),
    ("name==(p)", Ok("00000")),
    ("name==[p]", Ok("00000")),
    ("name==p\\", Ok("00000")),
    ("\"name\"==p", Ok("00001")),
    (
        "|name|==p",
        Err("filters: parse error: [ >|||< name|==p]: invalid quote encountered"),
    ),
    (
        "/name/==p",
        Err("filters: parse error: [ >|/|< name/==p]: invalid quote encountered"),
    ),
    ("labels.\"\"==x", Ok("00000")),
];

#[test]
fn matches_containerd_exactly() {
    let records = records();
    for (input, want) in GOLDEN {
        let got = parse(input).map_err(|e| e.0).map(|f| {
            records
                .iter()
                .map(|r| if f.matches(r) { '1' } else { '0' })
                .collect::<String>()
        });
        let want = want.map(str::to_owned).map_err(str::to_owned);
        assert_eq!(got, want, "input {input:?}");
    }
}
