//! The device API's JSON message parser (`POST /SmartTransport`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = satellite::device::wire::Message::parse(data);
});
