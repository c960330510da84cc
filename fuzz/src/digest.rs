//! OCI digests: anything `Digest::parse` accepts displays back as the input, with the
//! algorithm's hex length; the first 32 bytes as a sha256 hash round-trip through parse.

use strata_core::digest::Digest;

pub fn check(data: &[u8]) {
    if let Some(input) = crate::text(data) {
        match Digest::parse(input) {
            Ok(d) => {
                assert_eq!(d.to_string(), input);
                assert_eq!(d.hex().len(), d.algorithm().hex_len());
                assert_eq!(input.parse::<Digest>().as_ref(), Ok(&d));
            }
            Err(e) => assert_eq!(e.input, input),
        }
    }
    if let Some(hash) = data.first_chunk::<32>() {
        let d = Digest::sha256_from_bytes(hash);
        assert_eq!(Digest::parse(&d.to_string()), Ok(d));
    }
}
