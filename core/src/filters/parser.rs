//! containerd's recursive-descent filter parser (`filters/parser.go`), with its error messages.

use super::scanner::{Ch, Scanner, Token};
use super::unquote::unquote;
use super::{
    MAX_PATTERN_BYTES, MAX_REGEXES, MAX_SELECTORS, Operator, ParseError, REGEX_DFA_SIZE_LIMIT,
    REGEX_SIZE_LIMIT, Selector,
};
use crate::goquote::quote;

/// What is left of one request's caps on selectors and regular expressions.
pub(super) struct Budget {
    selectors: usize,
    regexes: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            selectors: MAX_SELECTORS,
            regexes: MAX_REGEXES,
        }
    }
}

impl Budget {
    /// Takes one selector, or fails once [`MAX_SELECTORS`] are taken.
    pub(super) fn selector(&mut self) -> Result<(), ParseError> {
        take(&mut self.selectors, "selectors", MAX_SELECTORS)
    }

    /// Takes one regular expression, or fails once [`MAX_REGEXES`] are taken.
    fn regex(&mut self) -> Result<(), ParseError> {
        take(&mut self.regexes, "regular expressions", MAX_REGEXES)
    }
}

/// Takes one from `left`, or fails naming `what` and its cap `max` once none is left.
fn take(left: &mut usize, what: &str, max: usize) -> Result<(), ParseError> {
    *left = left.checked_sub(1).ok_or_else(|| {
        ParseError(format!(
            "filters: parse error: too many {what}: a request may hold at most {max}"
        ))
    })?;
    Ok(())
}

pub(super) struct Parser<'a, 'b> {
    input: &'a str,
    scanner: Scanner<'a>,
    budget: &'b mut Budget,
}

impl<'a, 'b> Parser<'a, 'b> {
    /// A parser of `input` taking its selectors from `budget`.
    pub(super) fn new(input: &'a str, budget: &'b mut Budget) -> Self {
        Parser {
            input,
            scanner: Scanner::new(input),
            budget,
        }
    }

    /// `selector ("," selector)*`
    pub(super) fn selectors(&mut self) -> Result<Vec<Selector>, ParseError> {
        let mut all = vec![self.selector()?];
        loop {
            match self.scanner.peek() {
                Ch::Rune(',') => {
                    let (pos, tok, _) = self.scanner.scan();
                    if tok != Token::Separator {
                        return Err(self.error(pos, "expected a separator"));
                    }
                    all.push(self.selector()?);
                }
                Ch::Eof => return Ok(all),
                other => {
                    let shown = match other {
                        Ch::Rune(c) => c,
                        _ => char::REPLACEMENT_CHARACTER,
                    };
                    let msg = format!("unexpected input: {shown}");
                    return Err(self.error(self.scanner.ppos, &msg));
                }
            }
        }
    }

    /// `fieldpath (operator value)?`
    fn selector(&mut self) -> Result<Selector, ParseError> {
        self.budget.selector()?;
        let path = self.fieldpath()?;
        if matches!(self.scanner.peek(), Ch::Rune(',') | Ch::Eof) {
            let op = Operator::Present;
            return Ok(Selector { path, op });
        }
        let op = self.operator()?;
        let is_regex = op == "~=";
        if is_regex {
            self.budget.regex()?;
        }
        let (pos, value) = self.value(is_regex)?;
        let op = match op {
            "==" => Operator::Equal(value),
            "!=" => Operator::NotEqual(value),
            _ => Operator::Matches(self.regex(pos, &path, value)?),
        };
        Ok(Selector { path, op })
    }

    /// `field ("." field)*`
    fn fieldpath(&mut self) -> Result<Vec<String>, ParseError> {
        let mut fields = vec![self.field()?];
        while self.scanner.peek() == Ch::Rune('.') {
            let (pos, tok, _) = self.scanner.scan();
            if tok != Token::Separator {
                return Err(self.error(pos, "expected a field separator (`.`)"));
            }
            fields.push(self.field()?);
        }
        Ok(fields)
    }

    fn field(&mut self) -> Result<String, ParseError> {
        let (pos, tok, text) = self.scanner.scan();
        match tok {
            Token::Field => Ok(text.to_owned()),
            // A field holding invalid UTF-8 names no label; U+FFFD keeps it unmatchable in practice.
            Token::Quoted => Ok(String::from_utf8_lossy(&self.unquote(pos, text, false)?).into()),
            Token::Illegal => Err(self.error(pos, &self.scanner.err.clone())),
            _ => Err(self.error(pos, "expected field or quoted")),
        }
    }

    /// The operator's text: one of `==`, `!=`, `~=`.
    fn operator(&mut self) -> Result<&'a str, ParseError> {
        let (pos, tok, text) = self.scanner.scan();
        match tok {
            Token::Operator if matches!(text, "==" | "!=" | "~=") => Ok(text),
            Token::Operator => {
                Err(self.error(pos, &format!("unsupported operator {}", quote(text))))
            }
            Token::Illegal => Err(self.error(pos, &self.scanner.err.clone())),
            _ => Err(self.error(pos, r#"expected an operator ("=="|"!="|"~=")"#)),
        }
    }

    fn value(&mut self, allow_alt_quotes: bool) -> Result<(usize, Vec<u8>), ParseError> {
        let (pos, tok, text) = self.scanner.scan();
        match tok {
            Token::Value | Token::Field => Ok((pos, text.as_bytes().to_vec())),
            Token::Quoted => Ok((pos, self.unquote(pos, text, allow_alt_quotes)?)),
            Token::Illegal => Err(self.error(pos, &self.scanner.err.clone())),
            _ => Err(self.error(pos, "expected value or quoted")),
        }
    }

    fn unquote(&self, pos: usize, text: &str, allow_alts: bool) -> Result<Vec<u8>, ParseError> {
        if !allow_alts && !text.starts_with(['\'', '"']) {
            return Err(self.error(pos, "invalid quote encountered"));
        }
        unquote(text).map_err(|e| self.error(pos, &format!("unquoting failed: {e}")))
    }

    /// Compiles the pattern of the `~=` selector on `path`, within the size caps.
    fn regex(
        &self,
        pos: usize,
        path: &[String],
        value: Vec<u8>,
    ) -> Result<regex::Regex, ParseError> {
        if value.len() > MAX_PATTERN_BYTES {
            return Err(ParseError(format!(
                "filters: parse error: regexp of {} bytes for {} is longer than the limit of \
                 {MAX_PATTERN_BYTES} bytes",
                value.len(),
                shown(path)
            )));
        }
        let pattern = String::from_utf8(value)
            .map_err(|_| self.error(pos, "error parsing regexp: invalid UTF-8"))?;
        regex::RegexBuilder::new(&pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
            .build()
            .map_err(|e| match e {
                regex::Error::CompiledTooBig(limit) => ParseError(format!(
                    "filters: parse error: regexp for {} exceeds the compiled size limit of \
                     {limit} bytes",
                    shown(path)
                )),
                e => {
                    let msg = format!("error parsing regexp {}: {}", quote(&pattern), reason(&e));
                    self.error(pos, &msg)
                }
            })
    }

    /// containerd's message: `filters: parse error: [before >|c|< after]: msg`.
    fn error(&self, pos: usize, msg: &str) -> ParseError {
        let input = self.input;
        let location = match input.get(pos..).and_then(|rest| rest.chars().next()) {
            Some(c) => {
                let after = &input[pos + c.len_utf8()..];
                format!("[{} >|{c}|< {after}]", &input[..pos])
            }
            None => format!("[{input}]"),
        };
        ParseError(format!("filters: parse error: {location}: {msg}"))
    }
}

/// The one-line reason of a `regex` error (its Display draws the pattern over several lines).
fn reason(e: &regex::Error) -> String {
    let text = e.to_string();
    match text.lines().rev().find_map(|l| l.strip_prefix("error: ")) {
        Some(reason) => reason.to_owned(),
        None => text.replace('\n', " "),
    }
}

/// A field path for a message: its elements joined by `.`, cut after 128 characters.
fn shown(path: &[String]) -> String {
    const MAX: usize = 128;
    let joined = path.join(".");
    match joined.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &joined[..cut]),
        None => joined,
    }
}
