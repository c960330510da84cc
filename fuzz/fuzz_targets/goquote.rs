//! Fuzz target `goquote`: see [`strata_fuzz::goquote`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strata_fuzz::goquote::check(data));
