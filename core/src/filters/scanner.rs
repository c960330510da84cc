//! containerd's filter scanner (`filters/scanner.go`), ported token for token: positions are
//! byte offsets, and the first error message sticks for the scanner's lifetime.

use crate::goquote::is_print;

/// What [`Scanner::next`] reads: a character, the end, or an illegal character (NUL, U+FFFD).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ch {
    Eof,
    Illegal,
    Rune(char),
}

/// A scanned token; `Other` is a character that starts no token (`?`, `[`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Token {
    Eof,
    Quoted,
    Value,
    Field,
    Separator,
    Operator,
    Illegal,
    Other(char),
}

pub(super) struct Scanner<'a> {
    input: &'a str,
    /// Start of the current character.
    pos: usize,
    /// End of the current character.
    pub(super) ppos: usize,
    /// After an operator the next bare word is a value, not a field.
    value: bool,
    /// The first error met (Go keeps it for the scanner's lifetime).
    pub(super) err: String,
}

impl<'a> Scanner<'a> {
    pub(super) fn new(input: &'a str) -> Self {
        Scanner {
            input,
            pos: 0,
            ppos: 0,
            value: false,
            err: String::new(),
        }
    }

    fn next(&mut self) -> Ch {
        if self.pos >= self.input.len() {
            return Ch::Eof;
        }
        self.pos = self.ppos;
        let Some(r) = self.input[self.ppos..].chars().next() else {
            return Ch::Eof;
        };
        self.ppos += r.len_utf8();
        match r {
            // Go's decoder reports U+FFFD as utf8.RuneError, which the scanner rejects.
            '\u{FFFD}' => {
                self.error("rune error");
                Ch::Illegal
            }
            '\0' => {
                self.error("unexpected null");
                Ch::Illegal
            }
            _ => Ch::Rune(r),
        }
    }

    pub(super) fn peek(&mut self) -> Ch {
        let (pos, ppos) = (self.pos, self.ppos);
        let ch = self.next();
        self.pos = pos;
        self.ppos = ppos;
        ch
    }

    /// The next token: its start, kind and text.
    pub(super) fn scan(&mut self) -> (usize, Token, &'a str) {
        let mut ch = self.next();
        let mut pos = self.pos;
        loop {
            let c = match ch {
                Ch::Eof => return (self.pos, Token::Eof, ""),
                Ch::Illegal => return (self.pos, Token::Illegal, ""),
                Ch::Rune(c) => c,
            };
            let token = if is_quote_rune(c) {
                if self.scan_quoted(c) {
                    Token::Quoted
                } else {
                    Token::Illegal
                }
            } else if is_separator_rune(c) {
                self.value = false;
                Token::Separator
            } else if is_operator_rune(c) {
                self.scan_operator();
                self.value = true;
                Token::Operator
            } else if c.is_whitespace() {
                ch = self.next();
                pos = self.pos;
                continue;
            } else if self.value {
                self.scan_while(is_value_rune);
                self.value = false;
                Token::Value
            } else if is_field_rune(c) {
                self.scan_while(is_field_rune);
                Token::Field
            } else {
                return (self.pos, Token::Other(c), "");
            };
            return (pos, token, &self.input[pos..self.ppos]);
        }
    }

    fn scan_while(&mut self, accept: fn(char) -> bool) {
        while let Ch::Rune(c) = self.peek() {
            if !accept(c) {
                break;
            }
            self.next();
        }
    }

    fn scan_operator(&mut self) {
        self.scan_while(is_operator_rune);
    }

    fn scan_quoted(&mut self, quote: char) -> bool {
        let mut illegal = false;
        let mut ch = self.next();
        while ch != Ch::Rune(quote) {
            if matches!(ch, Ch::Rune('\n') | Ch::Eof | Ch::Illegal) {
                self.error("quoted literal not terminated");
                return false;
            }
            if ch == Ch::Rune('\\') {
                let legal;
                (ch, legal) = self.scan_escape(quote);
                illegal |= !legal;
            } else {
                ch = self.next();
            }
        }
        !illegal
    }

    fn scan_escape(&mut self, quote: char) -> (Ch, bool) {
        let ch = self.next();
        match ch {
            Ch::Rune('a' | 'b' | 'f' | 'n' | 'r' | 't' | 'v' | '\\') => (self.next(), true),
            Ch::Rune(c) if c == quote => (self.next(), true),
            Ch::Rune('0'..='7') => self.scan_digits(ch, 8, 3),
            Ch::Rune('x') => {
                let first = self.next();
                self.scan_digits(first, 16, 2)
            }
            Ch::Rune('u') => {
                let first = self.next();
                self.scan_digits(first, 16, 4)
            }
            Ch::Rune('U') => {
                let first = self.next();
                self.scan_digits(first, 16, 8)
            }
            _ => {
                self.error("illegal escape sequence");
                (ch, false)
            }
        }
    }

    fn scan_digits(&mut self, mut ch: Ch, base: u32, mut n: usize) -> (Ch, bool) {
        while n > 0 && digit_val(ch) < base {
            ch = self.next();
            n -= 1;
        }
        if n > 0 {
            self.error("illegal numeric escape sequence");
            return (ch, false);
        }
        (ch, true)
    }

    fn error(&mut self, msg: &str) {
        if self.err.is_empty() {
            self.err = msg.to_owned();
        }
    }
}

fn digit_val(ch: Ch) -> u32 {
    match ch {
        Ch::Rune(c) => c.to_digit(16).unwrap_or(16),
        _ => 16,
    }
}

fn is_field_rune(c: char) -> bool {
    c == '_' || c.is_ascii_alphanumeric()
}

fn is_operator_rune(c: char) -> bool {
    matches!(c, '=' | '!' | '~')
}

fn is_quote_rune(c: char) -> bool {
    matches!(c, '/' | '|' | '"')
}

fn is_separator_rune(c: char) -> bool {
    matches!(c, ',' | '.')
}

/// Go: not `,`, not space, and a letter, digit, number, punctuation or other graphic character.
fn is_value_rune(c: char) -> bool {
    c != ',' && !c.is_whitespace() && is_print(c)
}

#[cfg(test)]
mod tests;
