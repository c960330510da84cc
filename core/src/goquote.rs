//! Go's `%q` / `strconv.Quote`, so messages quote names exactly as containerd does.

use std::fmt::Write;

/// Quotes `s` as Go's `strconv.Quote`: double quotes, `\"` and `\\` escaped, printable
/// characters kept, the usual C escapes, `\xNN` for other ASCII controls and `\uNNNN` /
/// `\UNNNNNNNN` for other non-printable characters.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    out.push('"');
    out
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '"' | '\\' => {
            out.push('\\');
            out.push(c);
        }
        _ if is_print(c) => out.push(c),
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        _ if c < ' ' || c == '\x7f' => {
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        }
        _ if u32::from(c) < 0x10000 => {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        }
        _ => {
            let _ = write!(out, "\\U{:08x}", u32::from(c));
        }
    }
}

/// Go's `unicode.IsPrint` (letters, marks, numbers, punctuation, symbols and the ASCII space),
/// approximated for non-ASCII by Rust's own printability table: `str::escape_debug` keeps
/// printable characters, and marks too when they do not start the string.
pub(crate) fn is_print(c: char) -> bool {
    if c.is_ascii() {
        return (' '..='~').contains(&c);
    }
    let probe = format!("a{c}");
    probe.escape_debug().eq(probe.chars())
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quotes_like_go() {
        assert_eq!(quote("labels.a"), r#""labels.a""#);
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(quote("\n\t\x01\x7f"), r#""\n\t\x01\x7f""#);
        assert_eq!(quote("héllo 世界"), "\"héllo 世界\"");
        assert_eq!(quote("\u{a0}\u{200b}"), r#""\u00a0\u200b""#);
        assert_eq!(quote("e\u{301}"), "\"e\u{301}\"", "marks are printable");
        assert_eq!(quote("\u{10ffff}"), r#""\U0010ffff""#);
    }
}
