//! Fuzz target `estargz`: see [`strata_fuzz::estargz`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strata_fuzz::estargz::check(data));
