//! The RPM and the systemd unit, checked by the real tools: `rpmbuild`
//! builds the package from the built binary, `rpm` lists its files,
//! modes and scriptlets and installs it into a scratch root, and
//! `systemd-analyze` verifies the unit and scores its exposure.

mod support;

use std::path::Path;
use std::process::Command;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_rpm_builds_with_the_right_files_modes_and_scriptlets() {
    if !support::have("rpmbuild") {
        support::skip("rpmbuild (Debian package rpm)");
        return;
    }
    let root = support::repo();
    let bin = env!("CARGO_BIN_EXE_cloudburst");
    let rpm = run(Command::new("bash")
        .arg(root.join("packaging/build-rpm.sh"))
        .arg(bin));
    let rpm = rpm.trim().to_string();
    assert!(rpm.ends_with(".el9.x86_64.rpm"), "{rpm}");

    // Files and their modes and owners, as rpm records them.
    let list = run(Command::new("rpm").args([
        "-qp",
        "--qf",
        "[%{FILEMODES:perms} %{FILEUSERNAME} %{FILEGROUPNAME} %{FILENAMES}\n]",
        &rpm,
    ]));
    let has = |line: &str| {
        assert!(
            list.lines().any(|l| l == line),
            "missing {line:?} in:\n{list}"
        )
    };
    has("-rwxr-xr-x root root /usr/bin/cloudburst");
    has("-rw-r--r-- root root /usr/lib/systemd/system/cloudburst.service");
    has("-rw-r--r-- root root /usr/lib/sysusers.d/cloudburst.conf");
    has("-rw-r--r-- root root /usr/lib/tmpfiles.d/cloudburst.conf");
    has("drwxr-x--- root cloudburst /etc/cloudburst");
    has("-rw-r----- root cloudburst /etc/cloudburst/cloudburst.toml");
    has("drwxr-x--- cloudburst cloudburst /var/lib/cloudburst");
    // The pilot revocation list's folder: the central manager's condor
    // reads it, so it is apart from the private state.
    has("drwxr-xr-x cloudburst cloudburst /var/lib/cloudburst-condor");
    has("-rw-r--r-- root root /usr/share/man/man1/cloudburst.1.gz");
    has("-rw-r--r-- root root /usr/share/cloudburst/condor-config/50-cloudburst-central-manager.conf");
    has("-rw-r--r-- root root /usr/share/cloudburst/condor-config/50-cloudburst-schedd.conf");
    has("-rw-r--r-- root root /usr/share/cloudburst/htcondor-ce/50-cloudburst-route.conf");
    for module in ["cloud", "cloudorlocal", "localonly"] {
        has(&format!(
            "-rw-r--r-- root root /usr/share/perl5/vendor_perl/Globus/GRAM/JobManager/{module}.pm"
        ));
    }
    has("-rwxr-xr-x root root /usr/libexec/cloudburst/providers/local-container");
    // Nothing world-writable, nothing setuid.
    for l in list.lines() {
        let perms = l.split_whitespace().next().unwrap();
        assert!(!perms.ends_with('w') && !perms.contains('s'), "{l}");
    }
    let config = run(Command::new("rpm").args(["-qp", "--configfiles", &rpm]));
    assert!(config.contains("/etc/cloudburst/cloudburst.toml"));

    let scripts = run(Command::new("rpm").args(["-qp", "--scripts", &rpm]));
    assert!(
        scripts.contains("useradd -r -g cloudburst -d /var/lib/cloudburst"),
        "{scripts}"
    );
    assert!(
        scripts.contains("systemctl preset cloudburst.service") || scripts.contains("systemd_post"),
        "{scripts}"
    );
    assert!(
        scripts.contains("disable --now cloudburst.service") || scripts.contains("systemd_preun"),
        "{scripts}"
    );

    // Installed into a scratch root, the binary runs and the shipped
    // config passes its own check.
    let scratch = tempfile::tempdir().unwrap();
    run(Command::new("rpm")
        .args(["-i", "--nodeps", "--noscripts", "--root"])
        .arg(scratch.path())
        .arg(&rpm));
    let installed = scratch.path().join("usr/bin/cloudburst");
    let conf = scratch.path().join("etc/cloudburst/cloudburst.toml");
    let out = run(Command::new(&installed)
        .args(["check-config", "--config"])
        .arg(&conf));
    assert!(out.contains(": ok"), "{out}");
    let man = std::fs::metadata(scratch.path().join("usr/share/man/man1/cloudburst.1.gz")).unwrap();
    assert!(man.len() > 1000);
}

#[test]
fn the_unit_verifies_and_its_exposure_is_at_most_2() {
    if !support::have("systemd-analyze") {
        support::skip("systemd-analyze");
        return;
    }
    let root = support::repo();
    let dir = tempfile::tempdir().unwrap();
    // Point ExecStart at the built binary (verify checks it is executable)
    // and give `man` the generated page (verify checks Documentation=).
    let unit = std::fs::read_to_string(root.join("packaging/cloudburst.service"))
        .unwrap()
        .replace("/usr/bin/cloudburst", env!("CARGO_BIN_EXE_cloudburst"));
    let path = dir.path().join("cloudburst.service");
    std::fs::write(&path, unit).unwrap();
    let man = dir.path().join("man/man1");
    std::fs::create_dir_all(&man).unwrap();
    let page = run(Command::new(env!("CARGO_BIN_EXE_cloudburst")).arg("man"));
    std::fs::write(man.join("cloudburst.1"), page).unwrap();

    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .env("MANPATH", dir.path().join("man"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // Unknown keys and typos only warn: any output is a failure.
    assert!(
        out.status.success() && err.trim().is_empty(),
        "systemd-analyze verify:\n{err}"
    );

    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes"])
        .arg(&path)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let score: f64 = text
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for cloudburst.service:")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no exposure score in:\n{text}"));
    eprintln!("packaging: systemd-analyze security exposure {score}");
    assert!(score <= 2.0, "exposure {score} > 2.0:\n{text}");
    assert!(Path::new(&path).exists());
}

/// The repository stands alone: no source, test or CI file reads the
/// project's shared folder (only `.ci/run` names the HTCondor tarball
/// there, for the real-pool tests, which skip without it).
#[test]
fn nothing_but_ci_names_a_folder_outside_the_repository() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut offenders = Vec::new();
    let mut stack = vec![repo.join("src"), repo.join("tests"), repo.join(".ci")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue; // binary data
            };
            for (n, line) in text.lines().enumerate() {
                let names = ["../shared", "/work/shared", "CLOUDBURST_SHARED"]
                    .iter()
                    .any(|w| line.contains(w));
                let allowed = path.ends_with(".ci/run") && line.contains("shared/htcondor");
                if names && !allowed && !path.ends_with("tests/packaging.rs") {
                    offenders.push(format!("{}:{}: {line}", path.display(), n + 1));
                }
            }
        }
    }
    assert!(offenders.is_empty(), "{}", offenders.join("\n"));
}

/// The maps stay true: every file or folder ARCHITECTURE.md and
/// tests/README.md name exists, and every test the invariants table names
/// (`file` `test_name`) is a function in that file.
#[test]
fn the_architecture_map_names_only_what_exists() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut missing = Vec::new();
    // What the build and the test set-up make (`target/`, `.venv/`) is
    // ignored by git, so a fresh clone does not have it: not checked.
    let gitignore = std::fs::read_to_string(repo.join(".gitignore")).unwrap();
    let made_by_the_build: Vec<String> = gitignore
        .lines()
        .filter_map(|l| l.strip_prefix('/'))
        .filter(|l| !l.contains('/'))
        .map(|l| format!("{l}/"))
        .collect();
    for doc in ["ARCHITECTURE.md", "tests/README.md"] {
        let text = std::fs::read_to_string(repo.join(doc)).unwrap();
        let ticks: Vec<&str> = text.split('`').skip(1).step_by(2).collect();
        let mut last_file: Option<&str> = None;
        let mut dirs: Vec<std::path::PathBuf> = vec![repo.to_path_buf()];
        for t in ticks {
            let looks_like_path = !t.contains(' ')
                && (t.ends_with(".rs")
                    || t.ends_with(".md")
                    || t.ends_with(".py")
                    || t.ends_with('/')
                    || t.ends_with(".sh"))
                && !t.contains('*')
                && !t.contains('<')
                && !made_by_the_build.iter().any(|m| t.starts_with(m.as_str()));
            if looks_like_path {
                // A bare name is read in the folders named before it
                // (`condor/` ... `job.rs`).
                let bases: Vec<std::path::PathBuf> = if t.contains('/') {
                    vec![repo.to_path_buf(), repo.join("core/src"), repo.join("src")]
                } else {
                    dirs.clone()
                };
                let hits: Vec<std::path::PathBuf> = bases
                    .iter()
                    .map(|b| b.join(t))
                    .filter(|p| p.exists())
                    .collect();
                if t.ends_with('/') {
                    dirs.extend(hits.iter().cloned());
                }
                if hits.is_empty() {
                    missing.push(format!("{doc}: `{t}` does not exist"));
                }
                last_file = (t.ends_with(".rs") && t.contains('/')).then_some(t);
            } else if let (Some(file), "ARCHITECTURE.md") = (last_file, doc) {
                let is_test_name = t.len() > 12
                    && t.chars()
                        .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
                    && t.contains('_');
                if is_test_name {
                    let body = std::fs::read_to_string(repo.join(file)).unwrap_or_default();
                    if !body.contains(&format!("fn {t}(")) {
                        missing.push(format!("{doc}: `{file}` has no test `{t}`"));
                    }
                }
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}
