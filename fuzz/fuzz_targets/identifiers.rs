//! Fuzz target `identifiers`: see [`strata_fuzz::identifiers`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strata_fuzz::identifiers::check(data));
