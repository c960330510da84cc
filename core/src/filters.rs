//! containerd's filter grammar (`filters/parser.go`, `filters/scanner.go`).
//!
//! `selector ("," selector)*` is AND; several filter strings are OR ([`parse_all`]); operators
//! `==`, `!=` (true when the field is absent), `~=` (regular expression; value may be quoted
//! with `"…"`, `/…/` or `|…|`); a bare field tests presence; field path elements are
//! `[A-Za-z0-9_]+` or Go-quoted strings joined by `.` (`labels."containerd.io/gc.root"`);
//! unquoted values are `[^\s,]+`, but a value starting with `/` or `|` is scanned as a quote and
//! rejected for `==` and `!=`. Parse errors name the offending input.
//!
//! Matching follows containerd's `selector.Match` exactly: an absent field reads as `""`, so
//! `f!=v` holds for an absent `f` unless `v` is empty, and `f~=re` tests `re` against `""`.
//! Regular expressions use the `regex` crate (RE2 syntax, but `\d`, `\w`, `\s`, `\b` are
//! Unicode-aware); one that does not compile is a parse error (containerd only logs it and
//! never matches).
//!
//! CONTRACT (implement): the types and signatures below; record types implement [`Adaptor`].

mod parser;
mod scanner;
mod unquote;

/// A field lookup on a record: `path` is the parsed field path (`["labels", "a.b/c"]`).
/// Returns `None` when the field is absent.
pub trait Adaptor {
    fn field(&self, path: &[String]) -> Option<String>;
}

/// A parsed filter: OR of ANDs. The empty filter matches everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    alternatives: Vec<Vec<Selector>>,
}

#[derive(Debug, Clone)]
struct Selector {
    path: Vec<String>,
    op: Operator,
}

/// Values are bytes: a Go-quoted value may hold invalid UTF-8 (`"\xff"`), which no field equals.
#[derive(Debug, Clone)]
enum Operator {
    Present,
    Equal(Vec<u8>),
    NotEqual(Vec<u8>),
    Matches(regex::Regex),
}

/// A filter that does not parse; the message names the input and position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// Parses one filter string. The empty string matches everything.
///
/// Messages are containerd's, e.g.
/// `filters: parse error: [name== >|/|< abs]: quoted literal not terminated`.
pub fn parse(input: &str) -> Result<Filter, ParseError> {
    if input.is_empty() {
        return Ok(Filter::default());
    }
    let selectors = parser::Parser::new(input).selectors()?;
    Ok(Filter {
        alternatives: vec![selectors],
    })
}

/// Parses several filter strings, OR-ed; no strings (or only empty ones) match everything.
pub fn parse_all<S: AsRef<str>>(inputs: &[S]) -> Result<Filter, ParseError> {
    let mut alternatives = Vec::with_capacity(inputs.len());
    for input in inputs {
        let filter = parse(input.as_ref())?;
        if filter.alternatives.is_empty() {
            // An empty string is containerd's `Always`: an AND of nothing.
            alternatives.push(Vec::new());
        } else {
            alternatives.extend(filter.alternatives);
        }
    }
    Ok(Filter { alternatives })
}

impl Filter {
    /// Whether `record` satisfies every selector of at least one alternative.
    pub fn matches(&self, record: &dyn Adaptor) -> bool {
        self.alternatives.is_empty()
            || self
                .alternatives
                .iter()
                .any(|all| all.iter().all(|s| s.matches(record)))
    }

    /// Whether this filter matches every record (no selectors at all).
    pub fn is_always(&self) -> bool {
        self.alternatives.is_empty() || self.alternatives.iter().any(Vec::is_empty)
    }
}

impl Selector {
    fn matches(&self, record: &dyn Adaptor) -> bool {
        let field = record.field(&self.path);
        let value = field.as_deref().unwrap_or("");
        match &self.op {
            Operator::Present => field.is_some(),
            Operator::Equal(v) => field.is_some() && value.as_bytes() == v.as_slice(),
            Operator::NotEqual(v) => value.as_bytes() != v.as_slice(),
            Operator::Matches(re) => re.is_match(value),
        }
    }
}

#[cfg(test)]
mod tests;
