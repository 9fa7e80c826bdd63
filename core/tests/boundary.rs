//! The core's two structural promises, checked on its own sources and
//! manifest: no IO crate among its dependencies, and no import circle
//! among its modules (each top-level module may use only modules that do
//! not, directly or through others, use it back).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const FORBIDDEN: &[&str] = &[
    "tokio",
    "reqwest",
    "rusqlite",
    "aws-",
    "openstack",
    "osauth",
    "hyper",
];

#[test]
fn the_core_depends_on_no_io_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "cloudburst-core",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("running cargo tree");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(tree.contains("cloudburst-classad"), "{tree}");
    let bad: Vec<&str> = tree
        .lines()
        .filter(|l| FORBIDDEN.iter().any(|f| l.starts_with(f)))
        .collect();
    assert!(bad.is_empty(), "the core pulls in {bad:?}");
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `crate::<name>` references in `text`, comments included (a doc link is
/// a dependency of the reader's understanding too).
fn referenced(text: &str) -> BTreeSet<String> {
    text.match_indices("crate::")
        .map(|(i, _)| {
            text[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect::<String>()
        })
        .filter(|m| !m.is_empty())
        .collect()
}

#[test]
fn no_module_of_the_core_imports_one_that_imports_it_back() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap();
        let entry = uses.entry(top.clone()).or_default();
        for m in referenced(&text) {
            if m != top && m != "classad" {
                entry.insert(m);
            }
        }
    }
    assert!(uses.len() > 10, "modules found: {:?}", uses.keys());
    let reaches = |from: &str, to: &str| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_string()];
        while let Some(m) = stack.pop() {
            for n in uses.get(&m).into_iter().flatten() {
                if n == to {
                    return true;
                }
                if seen.insert(n.clone()) {
                    stack.push(n.clone());
                }
            }
        }
        false
    };
    let circles: Vec<String> = uses
        .iter()
        .flat_map(|(m, deps)| deps.iter().map(move |d| (m, d)))
        .filter(|(m, d)| reaches(d, m))
        .map(|(m, d)| format!("{m} -> {d}"))
        .collect();
    assert!(circles.is_empty(), "edges in import circles: {circles:#?}");
}
