//! The Call Home AML SOAP envelope reader.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(xml) = std::str::from_utf8(data) {
        let _ = satellite::notify::callhome::unwrap_envelope(xml);
    }
});
