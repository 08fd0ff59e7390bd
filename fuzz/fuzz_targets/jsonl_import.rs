#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    convo_fuzz::jsonl_import::check(data);
});
