//! The checks behind the fuzz targets (`fuzz_targets/*.rs` are one line each). Every check takes
//! the raw fuzzer input and panics only when a property the parser promises is broken; a parser
//! panicking on its own is a finding too.

pub mod digest;
pub mod estargz;
pub mod filters;
pub mod goquote;
pub mod identifiers;
pub mod labels;
pub mod tar_apply;

/// The input as text, or `None` when it is not UTF-8 (every parser here takes `&str`: gRPC
/// strings are UTF-8 before they reach it).
fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// A record for filters: `labels.<k>` reads a label, `name` the name, anything else is absent.
struct Record<'a> {
    name: &'a str,
    labels: &'a strata_core::labels::Labels,
}

impl strata_core::filters::Adaptor for Record<'_> {
    fn field(&self, path: &[String]) -> Option<String> {
        match path {
            [n] if n == "name" => Some(self.name.to_owned()),
            [l, k] if l == "labels" => self.labels.get(k).cloned(),
            _ => None,
        }
    }
}
