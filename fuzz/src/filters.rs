//! containerd's filter grammar: one filter string per line, parsed alone and all together (OR),
//! then matched against a record. Nothing may panic; parse errors name the filter grammar.

use strata_core::filters::{ParseError, parse, parse_all};
use strata_core::labels::Labels;

use crate::Record;

pub fn check(data: &[u8]) {
    let Some(input) = crate::text(data) else {
        return;
    };
    let labels: Labels = [("a.b", "c"), ("containerd.io/gc.root", "x"), ("e", "")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let record = Record {
        name: "xname",
        labels: &labels,
    };
    let lines: Vec<&str> = input.split('\n').collect();
    match parse(input) {
        Ok(f) => {
            let _ = f.matches(&record);
        }
        Err(e) => well_formed(&e),
    }
    match parse_all(&lines) {
        Ok(f) => {
            let matched = f.matches(&record);
            if f.is_always() {
                assert!(matched, "an always-filter must match: {input:?}");
            }
        }
        Err(e) => well_formed(&e),
    }
}

/// Every error is one of the grammar's (`filters: parse error: …`).
fn well_formed(e: &ParseError) {
    assert!(
        e.0.starts_with("filters: parse error: "),
        "unexpected message {:?}",
        e.0
    );
}
