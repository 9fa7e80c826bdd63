//! Ads read from real `condor_q`/`condor_status` output and printed back in
//! the other form must match what the real tools printed, byte for byte.

mod support;

use cloudburst::cli::classad_cmd::{parse_command, AdFormat, AdOutput};

fn convert(path: &str, from: AdFormat, to: AdOutput) -> String {
    let full = support::data_dir().join("condor").join(path);
    let mut out = Vec::new();
    parse_command(&full, from, to, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn fixture(path: &str) -> String {
    std::fs::read_to_string(support::data_dir().join("condor").join(path)).unwrap()
}

const PAIRS: [(&str, &str); 3] = [
    ("live/condor_q.json", "live/condor_q-long.txt"),
    ("live/condor_status.json", "live/condor_status-long.txt"),
    (
        "condor_q_json_job_ce.json",
        "condor_q_long_job_ce.sorted.ad",
    ),
];

#[test]
fn json_captures_print_as_the_long_captures() {
    for (json, long) in PAIRS {
        assert_eq!(
            convert(json, AdFormat::Json, AdOutput::Long),
            fixture(long),
            "{json} -> long"
        );
    }
}

#[test]
fn long_captures_print_as_the_json_captures() {
    for (json, long) in PAIRS {
        assert_eq!(
            convert(long, AdFormat::Long, AdOutput::Json),
            fixture(json),
            "{long} -> json"
        );
    }
}

#[test]
fn every_capture_counts_its_ads() {
    for (file, from, n) in [
        ("live/condor_q-long.txt", AdFormat::Long, 10),
        ("live/condor_q.json", AdFormat::Json, 10),
        ("live/condor_status.json", AdFormat::Json, 5),
        (
            "live/cli/q_json_projection_nomatch.stdout",
            AdFormat::Json,
            0,
        ),
    ] {
        assert_eq!(
            convert(file, from, AdOutput::Count).trim(),
            n.to_string(),
            "{file}"
        );
    }
}
