//! OCI digests as go-digest validates them: `sha256|sha384|sha512` `:` lowercase hex of the
//! algorithm's length.
//!
//! CONTRACT (implement): `Digest` parses with `str::parse`/`Digest::parse`, displays as
//! `algo:hex`, and rejects anything else with `InvalidDigest` naming the input.

use std::fmt;
use std::str::FromStr;

/// A digest algorithm go-digest registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha384,
    Sha512,
}

impl Algorithm {
    /// The algorithm's name as it prefixes a digest (`sha256`).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha384 => "sha384",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Number of hex characters of an encoded hash (twice the hash size in bytes).
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha384 => 96,
            Algorithm::Sha512 => 128,
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "sha256" => Some(Algorithm::Sha256),
            "sha384" => Some(Algorithm::Sha384),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validated digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

/// The message containerd gives: `"<input>" failed validation`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} failed validation")]
pub struct InvalidDigest {
    pub input: String,
}

impl Digest {
    /// Validates `s` as go-digest's `Digest.Validate` does (registered algorithm, lowercase hex
    /// of exactly the algorithm's length).
    pub fn parse(s: &str) -> Result<Self, InvalidDigest> {
        let invalid = || InvalidDigest {
            input: s.to_owned(),
        };
        let (name, hex) = s.split_once(':').ok_or_else(invalid)?;
        let algorithm = Algorithm::from_name(name).ok_or_else(invalid)?;
        if hex.len() != algorithm.hex_len() || !hex.bytes().all(is_lower_hex) {
            return Err(invalid());
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_owned(),
        })
    }

    /// The sha256 digest with the given 32-byte hash.
    pub fn sha256_from_bytes(hash: &[u8; 32]) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut hex = String::with_capacity(64);
        for b in hash {
            hex.push(HEX[usize::from(b >> 4)] as char);
            hex.push(HEX[usize::from(b & 0xf)] as char);
        }
        Digest {
            algorithm: Algorithm::Sha256,
            hex,
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Lowercase hex of the hash.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

impl FromStr for Digest {
    type Err = InvalidDigest;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_SHA256: &str =
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_and_displays_sha256() {
        let d: Digest = EMPTY_SHA256.parse().unwrap();
        assert_eq!(d.algorithm(), Algorithm::Sha256);
        assert_eq!(d.hex().len(), 64);
        assert_eq!(d.to_string(), EMPTY_SHA256);
    }

    #[test]
    fn parses_sha384_and_sha512() {
        let s384 = format!("sha384:{}", "a".repeat(96));
        let s512 = format!("sha512:{}", "0".repeat(128));
        assert_eq!(Digest::parse(&s384).unwrap().algorithm(), Algorithm::Sha384);
        assert_eq!(Digest::parse(&s512).unwrap().algorithm(), Algorithm::Sha512);
        assert_eq!(Digest::parse(&s512).unwrap().to_string(), s512);
    }

    #[test]
    fn rejects_malformed_digests() {
        let upper = EMPTY_SHA256.to_uppercase().replace("SHA256", "sha256");
        let cases = [
            String::new(),
            "sha256".to_owned(),
            "sha256:".to_owned(),
            ":abc".to_owned(),
            upper,
            format!("md5:{}", "a".repeat(32)),
            format!("SHA256:{}", "a".repeat(64)),
            format!("sha256:{}", "a".repeat(63)),
            format!("sha256:{}", "a".repeat(65)),
            format!("sha384:{}", "a".repeat(64)),
            format!("sha512:{}", "a".repeat(96)),
            format!("sha256:{}g", "a".repeat(63)),
            format!("sha256:{}:", "a".repeat(63)),
            format!(" {EMPTY_SHA256}"),
            EMPTY_SHA256.replacen(':', "", 1),
        ];
        for case in cases {
            let err = Digest::parse(&case).unwrap_err();
            assert_eq!(err.input, case);
        }
    }

    #[test]
    fn error_message_quotes_input() {
        let err = "sha256:XYZ".parse::<Digest>().unwrap_err();
        assert_eq!(err.to_string(), r#""sha256:XYZ" failed validation"#);
    }

    #[test]
    fn sha256_from_bytes_hex_encodes() {
        let mut hash = [0u8; 32];
        hash[0] = 0xab;
        hash[31] = 0x0f;
        let d = Digest::sha256_from_bytes(&hash);
        let expected = format!("sha256:ab{}0f", "0".repeat(60));
        assert_eq!(d.to_string(), expected);
        assert_eq!(Digest::parse(&expected).unwrap(), d);
    }

    #[test]
    fn ordering_and_equality_follow_text() {
        let a = Digest::parse(&format!("sha256:{}", "0".repeat(64))).unwrap();
        let b = Digest::parse(&format!("sha256:{}", "1".repeat(64))).unwrap();
        assert!(a < b);
        assert_ne!(a, b);
    }
}
