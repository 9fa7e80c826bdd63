//! Evaluation of arbitrary expressions against an ad and in a match:
//! never a panic, a stack overflow or a hang (the evaluator's bounds).
#![no_main]
use cloudburst_classad::matching::with_value;
use cloudburst_classad::parser::{parse_ad, parse_expr};
use cloudburst_classad::Matcher;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first line is an ad for MY, the rest the expression.
    let (head, tail) = match data.iter().position(|&c| c == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b"[a = 1; b = {1, \"x\"}; c = [d = a]]"[..], data),
    };
    let Ok(expr) = parse_expr(tail) else { return };
    let my = parse_ad(head).unwrap_or_default();
    let target = parse_ad(b"[Memory = 2048; Cpus = 4; Requirements = MY.Memory > TARGET.a]").unwrap();
    with_value(&expr, Some(&my), Some(&target), 1_800_000_000, |_| ());
    with_value(&expr, Some(&my), None, 1_800_000_000, |_| ());
    with_value(&expr, None, None, 1_800_000_000, |_| ());
    let m = Matcher::new(0);
    let _ = m.symmetric_match(&my, &target);
});
