#!/usr/bin/env bash
# Builds the EL9 RPM from the release binary (cargo build --release first).
# Works on EL9 and on Debian (apt-get install rpm). Writes
# target/rpmbuild/RPMS/x86_64/cloudburst-VERSION-1.x86_64.rpm and prints
# its path.
# Usage: packaging/build-rpm.sh [path/to/cloudburst]
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
bin=${1:-target/release/cloudburst}
[ -x "$bin" ] || { echo "build-rpm: $bin not found; run cargo build --release first" >&2; exit 2; }
command -v rpmbuild >/dev/null || { echo "build-rpm: rpmbuild not found (dnf/apt-get install rpm-build / rpm)" >&2; exit 2; }

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
top=$repo/target/rpmbuild
stage=$top/stage/cloudburst-staged
rm -rf "$top"
mkdir -p "$stage/bin" "$stage/man" "$top/SOURCES"

cp "$bin" "$stage/bin/cloudburst"
strip "$stage/bin/cloudburst"
"$bin" man | gzip -9n > "$stage/man/cloudburst.1.gz"
cp -r packaging condor-config jobmanager README.md "$stage/"
tar -C "$top/stage" -cf "$top/SOURCES/cloudburst-staged.tar" cloudburst-staged

rpmbuild -bb --quiet \
    --define "_topdir $top" \
    --define "cb_version $version" \
    --define "dist .el9" \
    packaging/cloudburst.spec >&2
ls "$top"/RPMS/x86_64/cloudburst-"$version"-1.el9.x86_64.rpm
