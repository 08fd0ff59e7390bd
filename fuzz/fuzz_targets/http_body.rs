#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    convo_fuzz::http_body::Harness::shared().check(data);
});
