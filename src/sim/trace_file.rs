//! Trace files on disk: opened (gzip or plain), their format guessed from
//! the name and first line, and parsed by [`crate::sim::trace`].

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

pub use cloudburst_core::sim::trace::*;

fn open(path: &Path) -> Result<Box<dyn BufRead>, TraceError> {
    let file = path.display().to_string();
    let io = |source| TraceError::Io {
        file: file.clone(),
        source,
    };
    let mut f = File::open(path).map_err(io)?;
    let mut magic = [0u8; 2];
    let n = f.read(&mut magic).map_err(io)?;
    let f = File::open(path).map_err(io)?;
    Ok(if n == 2 && magic == [0x1f, 0x8b] {
        Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(f)))
    } else {
        Box::new(BufReader::new(f))
    })
}

/// Guesses the format from the name and the first bytes.
pub fn sniff(path: &Path) -> Result<Format, TraceError> {
    let name = path.to_string_lossy().to_ascii_lowercase();
    if name.ends_with(".swf") || name.ends_with(".swf.gz") {
        return Ok(Format::Swf);
    }
    if name.ends_with(".csv") {
        return Ok(Format::Csv);
    }
    let mut r = open(path)?;
    let mut head = String::new();
    r.read_line(&mut head).map_err(|source| TraceError::Io {
        file: path.display().to_string(),
        source,
    })?;
    let t = head.trim_start();
    Ok(if t.starts_with('[') || t.starts_with('{') {
        Format::HistoryJson
    } else if t.starts_with(';') {
        Format::Swf
    } else {
        Format::HistoryFile
    })
}

/// Reads a trace file; submissions are made relative to the first.
pub fn read(path: &Path, format: Format, marking: Marking) -> Result<Trace, TraceError> {
    parse(open(path)?, &path.display().to_string(), format, marking)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(name);
        std::fs::write(&p, text).unwrap();
        (d, p)
    }

    const ALL: Marking = Marking {
        cloud_share: 1.0,
        seed: 1,
    };

    #[test]
    fn swf_lines_become_jobs() {
        let (_d, p) = write(
            "t.swf",
            "; comment\n 1 100 2 60 8 0 8632 8 7200 -1 1 1 1 1 1 -1 -1 -1\n 2 160 0 -1 1 0 -1 1 7200 -1 0 1 1 1 1 -1 -1 -1\n 3 200 0 30 1 0 -1 -1 7200 4194304 1 1 1 1 1 -1 -1 -1\n",
        );
        assert_eq!(sniff(&p).unwrap(), Format::Swf);
        let t = read(&p, Format::Swf, ALL).unwrap();
        assert_eq!(t.skipped, 1);
        assert_eq!(
            t.jobs,
            [
                TraceJob {
                    submit: 0,
                    runtime: 60,
                    cpus: 8,
                    memory_mb: 256 * 8,
                    cloud: true,
                    requested: Some(7200)
                },
                TraceJob {
                    submit: 100,
                    runtime: 30,
                    cpus: 1,
                    memory_mb: 4096,
                    cloud: true,
                    requested: Some(7200)
                },
            ]
        );
        let e = write("bad.swf", "1 2 3\n");
        let err = read(&e.1, Format::Swf, ALL).unwrap_err().to_string();
        assert!(
            err.ends_with("bad.swf:1: 3 SWF fields, expected 18"),
            "{err}"
        );
    }

    #[test]
    fn csv_with_and_without_a_cloud_column() {
        let (_d, p) = write(
            "t.csv",
            "submit,runtime,cpus,memory_mb,cloud\n10,60,1,2048,1\n0,30,2,4096,0\n",
        );
        let t = read(&p, Format::Csv, ALL).unwrap();
        assert_eq!(t.jobs.len(), 2);
        assert_eq!((t.jobs[0].submit, t.jobs[0].cloud), (0, false));
        assert_eq!((t.jobs[1].submit, t.jobs[1].cloud), (10, true));
        let (_d, p) = write("t.csv", "runtime,cpus\n1,1\n");
        assert!(read(&p, Format::Csv, ALL)
            .unwrap_err()
            .to_string()
            .contains("submit"));
        let half = Marking {
            cloud_share: 0.5,
            seed: 7,
        };
        let body: String = (0..1000).map(|i| format!("{i},60,1,100\n")).collect();
        let (_d, p) = write("t.csv", &format!("submit,runtime,cpus,memory_mb\n{body}"));
        let n = read(&p, Format::Csv, half)
            .unwrap()
            .jobs
            .iter()
            .filter(|j| j.cloud)
            .count();
        assert!((420..580).contains(&n), "{n}");
    }
}
