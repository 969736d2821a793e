//! The CSR reader a REGISTRATION or an ID RENEW hands its `csr` to.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(pem) = std::str::from_utf8(data) {
        let _ = satellite::pki::parse_csr(pem);
    }
});
