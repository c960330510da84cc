//! Fuzz target `labels`: see [`strata_fuzz::labels`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strata_fuzz::labels::check(data));
