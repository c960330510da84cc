//! Go string unquoting as containerd's `filters/quote.go` does it: `strconv.Unquote` for
//! double quotes, extended with `/…/` and `|…|` (which behave like double quotes whose own
//! delimiter may be escaped). The result is bytes: `\xNN` and octal escapes may produce
//! invalid UTF-8, as in Go.

/// The only error Go reports here: `quote syntax error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct QuoteSyntax;

impl std::fmt::Display for QuoteSyntax {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("quote syntax error")
    }
}

/// Unquotes a literal delimited by `"`, `/` or `|`.
pub(super) fn unquote(s: &str) -> Result<Vec<u8>, QuoteSyntax> {
    let bytes = s.as_bytes();
    let (&quote, &last) = bytes.first().zip(bytes.last()).ok_or(QuoteSyntax)?;
    if bytes.len() < 2 || quote != last || !matches!(quote, b'"' | b'/' | b'|') {
        return Err(QuoteSyntax);
    }
    let mut rest = &s[1..s.len() - 1];
    if rest.contains('\n') {
        return Err(QuoteSyntax);
    }
    let mut out = Vec::with_capacity(rest.len());
    while !rest.is_empty() {
        let (decoded, tail) = unquote_char(rest, quote)?;
        decoded.push_to(&mut out);
        rest = tail;
    }
    Ok(out)
}

/// One decoded character: a raw byte (`\xNN`, octal, ASCII) or a code point to UTF-8 encode.
enum Decoded {
    Byte(u8),
    Char(u32),
}

impl Decoded {
    fn push_to(self, out: &mut Vec<u8>) {
        match self {
            Decoded::Byte(b) => out.push(b),
            Decoded::Char(c) => {
                // Go encodes surrogates (which `\u` accepts) as U+FFFD.
                let c = char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER);
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
            }
        }
    }
}

fn unquote_char(s: &str, quote: u8) -> Result<(Decoded, &str), QuoteSyntax> {
    let c = s.as_bytes()[0];
    if c == quote {
        return Err(QuoteSyntax);
    }
    if !c.is_ascii() {
        let ch = s.chars().next().ok_or(QuoteSyntax)?;
        return Ok((Decoded::Char(u32::from(ch)), &s[ch.len_utf8()..]));
    }
    if c != b'\\' {
        return Ok((Decoded::Byte(c), &s[1..]));
    }
    let esc = *s.as_bytes().get(1).ok_or(QuoteSyntax)?;
    if !esc.is_ascii() {
        return Err(QuoteSyntax);
    }
    let rest = &s[2..];
    let simple = |b: u8| Ok((Decoded::Byte(b), rest));
    match esc {
        b'a' => simple(0x07),
        b'b' => simple(0x08),
        b'f' => simple(0x0c),
        b'n' => simple(b'\n'),
        b'r' => simple(b'\r'),
        b't' => simple(b'\t'),
        b'v' => simple(0x0b),
        b'\\' => simple(b'\\'),
        b'\'' | b'"' | b'|' | b'/' if esc == quote => simple(esc),
        b'x' => hex_escape(rest, 2).map(|(v, t)| (Decoded::Byte(v as u8), t)),
        b'u' => hex_escape(rest, 4).map(|(v, t)| (Decoded::Char(v), t)),
        b'U' => match hex_escape(rest, 8)? {
            (v, _) if v > u32::from(char::MAX) => Err(QuoteSyntax),
            (v, t) => Ok((Decoded::Char(v), t)),
        },
        b'0'..=b'7' => octal_escape(esc, rest),
        _ => Err(QuoteSyntax),
    }
}

fn hex_escape(s: &str, n: usize) -> Result<(u32, &str), QuoteSyntax> {
    let digits = s.get(..n).ok_or(QuoteSyntax)?;
    let value = digits.bytes().try_fold(0u32, |v, b| {
        let d = char::from(b).to_digit(16).ok_or(QuoteSyntax)?;
        Ok((v << 4) | d)
    })?;
    Ok((value, &s[n..]))
}

fn octal_escape(first: u8, s: &str) -> Result<(Decoded, &str), QuoteSyntax> {
    let digits = s.get(..2).ok_or(QuoteSyntax)?;
    let value = digits.bytes().try_fold(u32::from(first - b'0'), |v, b| {
        let d = char::from(b).to_digit(8).ok_or(QuoteSyntax)?;
        Ok((v << 3) | d)
    })?;
    let byte = u8::try_from(value).map_err(|_| QuoteSyntax)?;
    Ok((Decoded::Byte(byte), &s[2..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uq(s: &str) -> Result<Vec<u8>, QuoteSyntax> {
        unquote(s)
    }

    #[test]
    fn plain_and_alternative_quotes() {
        assert_eq!(uq(r#""abc""#).unwrap(), b"abc");
        assert_eq!(uq(r#""""#).unwrap(), b"");
        assert_eq!(uq("/[abc]+/").unwrap(), b"[abc]+");
        assert_eq!(uq("|牛|").unwrap(), "牛".as_bytes());
    }

    #[test]
    fn escapes_decode_like_go() {
        assert_eq!(uq(r#""a\n\t\\\"b""#).unwrap(), b"a\n\t\\\"b");
        assert_eq!(uq(r"/foo\/bar/").unwrap(), b"foo/bar");
        assert_eq!(uq(r"|a\|b|").unwrap(), b"a|b");
        assert_eq!(
            uq(r#""\x41\101\u00e9\U0001F600""#).unwrap(),
            "AAé😀".as_bytes()
        );
        assert_eq!(uq(r#""\xff""#).unwrap(), vec![0xff]);
        assert_eq!(uq(r#""\ud800""#).unwrap(), "\u{FFFD}".as_bytes());
    }

    #[test]
    fn syntax_errors() {
        for bad in [
            "\"",
            "\"abc",
            "\"a\"b\"",
            "\"a\nb\"",
            r#""\/""#,
            r"/a\'b/",
            r#""\q""#,
            r#""\x4""#,
            r#""\400""#,
            r#""\U00110000""#,
            "'a'",
            "`a`",
            "\"\\\"",
        ] {
            assert_eq!(uq(bad), Err(QuoteSyntax), "{bad:?}");
        }
    }
}
