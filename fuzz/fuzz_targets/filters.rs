//! Fuzz target `filters`: see [`strata_fuzz::filters`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strata_fuzz::filters::check(data));
