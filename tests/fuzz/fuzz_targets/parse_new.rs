//! New-syntax expressions and ads, printed back and read again: never a
//! panic, a hang or runaway memory. (Whether the printed text means the
//! same is libclassad's business, not a property to assert: its canonical
//! text is not a fixed point — `'a b'` after a dot prints raw, a unary
//! minus before a number reads back as a negative literal. Agreement with
//! the official library is tested in tests/classad_oracle.rs.)
#![no_main]
use cloudburst_classad::matching::eval_to_text;
use cloudburst_classad::parser::{parse_ad, parse_expr};
use cloudburst_classad::unparse::to_text;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = parse_expr(data) {
        let text = to_text(&e);
        if let Ok(again) = parse_expr(text.as_bytes()) {
            let _ = eval_to_text(&again, None, None, 1_800_000_000);
        }
    }
    if let Ok(ad) = parse_ad(data) {
        let mut out = Vec::new();
        cloudburst_classad::unparse::write_long(&ad, &mut out);
    }
});
