#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    convo_fuzz::model_reply::check(data);
});
