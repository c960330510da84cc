//! Fuzz target `digest`: see [`strata_fuzz::digest`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strata_fuzz::digest::check(data));
