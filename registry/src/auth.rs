//! Authentication as the distribution API defines it: `WWW-Authenticate` challenges, Basic
//! credentials, and bearer tokens from the token realm, cached per (host, repository) until
//! they expire.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;

/// How long a token lives when the token server does not say (`expires_in`).
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses `Basic realm="…"` or `Bearer realm="…",service="…",scope="…"` (quoted values may
/// hold commas).
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let params = parse_params(rest);
    let get = |k: &str| {
        params
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    if scheme.eq_ignore_ascii_case("basic") {
        Some(Challenge::Basic)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Some(Challenge::Bearer {
            realm: get("realm")?,
            service: get("service"),
            scope: get("scope"),
        })
    } else {
        None
    }
}

/// `k=v, k2="v,2"` -> pairs.
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim_start();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim().to_string();
        let after = after.trim_start();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            quoted(q)
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        out.push((key, value));
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

/// The value of a quoted string whose opening quote is gone, and what follows it.
fn quoted(s: &str) -> (String, &str) {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (value, &s[i + 1..]),
            '\\' => {
                if let Some((_, c)) = chars.next() {
                    value.push(c);
                }
            }
            c => value.push(c),
        }
    }
    (value, "")
}

/// The `Authorization` value for Basic credentials.
pub fn basic(username: &str, password: &str) -> String {
    let raw = format!("{username}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// A token server's answer: the token and how long it lives.
pub fn parse_token_response(body: &[u8]) -> Option<(String, Duration)> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let token = v
        .get("token")
        .or_else(|| v.get("access_token"))
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())?;
    let life = v
        .get("expires_in")
        .and_then(|e| e.as_u64())
        .filter(|&e| e > 0)
        .map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs);
    Some((token.to_string(), life))
}

/// Percent-encodes a query parameter value (scopes hold `:` and `/`, kept as they are).
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' | b'/' => {
                out.push(b as char)
            }
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// An `Authorization` value and when it expires (never for Basic).
type Entry = (String, Option<Instant>);

/// `Authorization` values by (host, repository).
#[derive(Default)]
pub struct AuthCache {
    map: Mutex<HashMap<(String, String), Entry>>,
}

impl AuthCache {
    /// The value to send to `host` for `repository`, unless there is none or it expired.
    pub fn get(&self, host: &str, repository: &str) -> Option<String> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let key = (host.to_string(), repository.to_string());
        match map.get(&key) {
            Some((_, Some(exp))) if *exp <= Instant::now() => {
                map.remove(&key);
                None
            }
            Some((v, _)) => Some(v.clone()),
            None => None,
        }
    }

    /// Remembers `value` for `host` and `repository`, for `life` (forever when `None`).
    pub fn put(&self, host: &str, repository: &str, value: String, life: Option<Duration>) {
        let exp = life.map(|l| Instant::now() + l);
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.insert((host.to_string(), repository.to_string()), (value, exp));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse_with_quoted_commas() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("reg".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(parse_challenge("Bearer service=x"), None);
    }

    #[test]
    fn token_responses_default_to_sixty_seconds() {
        assert_eq!(
            parse_token_response(br#"{"token":"t"}"#),
            Some(("t".into(), DEFAULT_TOKEN_LIFETIME))
        );
        assert_eq!(
            parse_token_response(br#"{"access_token":"a","expires_in":300}"#),
            Some(("a".into(), Duration::from_secs(300)))
        );
        assert_eq!(parse_token_response(br#"{"token":""}"#), None);
    }

    #[test]
    fn basic_credentials_encode_as_rfc7617() {
        assert_eq!(
            basic("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(
            query_escape("repository:a/b:pull,push"),
            "repository:a/b:pull%2Cpush"
        );
    }

    #[test]
    fn cached_values_expire() {
        let c = AuthCache::default();
        c.put("h", "r", "Bearer x".into(), Some(Duration::ZERO));
        assert_eq!(c.get("h", "r"), None);
        c.put("h", "r", "Basic y".into(), None);
        assert_eq!(c.get("h", "r").as_deref(), Some("Basic y"));
        assert_eq!(c.get("h", "other"), None);
    }
}
