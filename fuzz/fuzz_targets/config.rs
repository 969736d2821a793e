//! The configuration loader (YAML, aliases, duplicate keys, every value).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let base = std::env::temp_dir();
        let _ = satellite::config::Config::parse(text, "fuzz.yaml", &base);
    }
});
