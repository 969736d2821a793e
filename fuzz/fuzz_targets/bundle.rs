//! The sync bundle reader (zip, manifest, signature, limits).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = satellite::sync::bundle::open(data.to_vec(), &satellite::sync::bundle::Limits::default());
});
