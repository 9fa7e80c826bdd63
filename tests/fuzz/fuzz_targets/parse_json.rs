//! `-json` / `-jsonl` output: never a panic, never unbounded work.
#![no_main]
use cloudburst_classad::stream::JsonReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for ad in JsonReader::new(data).take(10_000) {
        if let Ok(ad) = ad {
            let mut out = Vec::new();
            cloudburst_classad::unparse::write_json(&ad, &mut out);
        }
    }
});
