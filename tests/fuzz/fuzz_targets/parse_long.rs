//! `-long` output: never a panic, errors located inside the input.
#![no_main]
use cloudburst_classad::stream::{LongReader, StreamError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let lines = data.iter().filter(|&&c| c == b'\n').count() + 1;
    for ad in LongReader::new(data) {
        match ad {
            Ok(ad) => {
                let mut out = Vec::new();
                cloudburst_classad::unparse::write_long(&ad, &mut out);
            }
            Err(StreamError::Syntax { line, .. }) => assert!(line <= lines),
            Err(StreamError::Io(e)) => panic!("no I/O errors from a slice: {e}"),
        }
    }
});
