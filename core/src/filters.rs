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
//! A filter request is capped so that a hostile one cannot make the daemon compile thousands of
//! large programs: at most [`MAX_SELECTORS`] selectors (of which at most [`MAX_REGEXES`] `~=`),
//! patterns of at most [`MAX_PATTERN_BYTES`], each compiling within [`REGEX_SIZE_LIMIT`] (and
//! matching with a lazy-DFA cache of at most [`REGEX_DFA_SIZE_LIMIT`]). Past any cap the request
//! is a parse error (InvalidArgument), whose message names the cap and not the whole input.
//!
//! CONTRACT (implement): the types and signatures below; record types implement [`Adaptor`].

mod parser;
mod scanner;
mod unquote;

/// Selectors one request may hold, over all its filter strings (an empty string, containerd's
/// "match everything", counts as one). containerd's own clients send a handful.
pub const MAX_SELECTORS: usize = 128;

/// Regular-expression (`~=`) selectors one request may hold, each compiled on every request.
pub const MAX_REGEXES: usize = 16;

/// The longest regular expression accepted, in bytes (after unquoting).
pub const MAX_PATTERN_BYTES: usize = 4096;

/// The most heap one compiled regular expression may take (`RegexBuilder::size_limit`): roomy
/// for label patterns (`^\w{1,64}$`, Unicode-aware, takes about 3 MiB), but
/// `\pL{40}\pN{40}` repeated a few times is rejected instead of compiled.
pub const REGEX_SIZE_LIMIT: usize = 4 << 20;

/// The most heap one regular expression's lazy DFA cache may take
/// (`RegexBuilder::dfa_size_limit`); past it matching falls back to slower engines.
pub const REGEX_DFA_SIZE_LIMIT: usize = 1 << 20;

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
    let selectors = parser::Parser::new(input, &mut parser::Budget::default()).selectors()?;
    Ok(Filter {
        alternatives: vec![selectors],
    })
}

/// Parses several filter strings, OR-ed; no strings (or only empty ones) match everything.
/// The caps ([`MAX_SELECTORS`], [`MAX_REGEXES`]) apply to all the strings together.
pub fn parse_all<S: AsRef<str>>(inputs: &[S]) -> Result<Filter, ParseError> {
    let mut budget = parser::Budget::default();
    let mut alternatives = Vec::with_capacity(inputs.len().min(MAX_SELECTORS));
    for input in inputs {
        let input = input.as_ref();
        if input.is_empty() {
            // An empty string is containerd's `Always`: an AND of nothing.
            budget.selector()?;
            alternatives.push(Vec::new());
        } else {
            alternatives.push(parser::Parser::new(input, &mut budget).selectors()?);
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
