#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need
# (a Python venv with the official HTCondor ClassAd library, used as the
# differential oracle), checks formatting and lints, and runs every test
# against the real components. Idempotent: a second run reuses .venv/.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

step() { printf '\n==> %s\n' "$*"; }

step "Python venv with the real components (.venv, .venv-openstack)"
# .venv: the official ClassAd library (the differential oracle), a real
# EC2 API (moto_server) and the AWS CLI (the script provider's example).
if ! .venv/bin/python -c 'import htcondor2, classad2' 2>/dev/null \
    || [ ! -x .venv/bin/moto_server ] || [ ! -x .venv/bin/aws ]; then
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check 'htcondor>=25.0' 'moto[server]>=5' awscli
fi
.venv/bin/python -c 'import htcondor2; print(htcondor2.version())'
# .venv-openstack: a real OpenStack control plane (Keystone, Placement,
# Nova with its fake virt driver, served by gunicorn; tests/openstack/);
# apart, as its pins clash with moto's.
if [ ! -x .venv-openstack/bin/keystone-manage ] || [ ! -x .venv-openstack/bin/gunicorn ] \
    || [ ! -x .venv-openstack/bin/nova-compute ] || [ ! -x .venv-openstack/bin/placement-manage ] \
    || ! .venv-openstack/bin/python -c 'import psycopg2' 2>/dev/null; then
    python3 -m venv .venv-openstack
    .venv-openstack/bin/pip install --quiet --disable-pip-version-check keystone gunicorn nova openstack-placement psycopg2-binary
fi
.venv-openstack/bin/python -c 'import importlib.metadata as m; print(*(p + " " + m.version(p) for p in ("keystone", "nova", "openstack-placement")))'

step "Debian tools: cloud-init (its schema validator), shellcheck, rpm (rpmbuild), rabbitmq-server and postgresql (Nova's broker and databases), chromium (renders report.html)"
debs="cloud-init shellcheck rpm rabbitmq-server postgresql chromium"
if ! command -v cloud-init >/dev/null || ! command -v shellcheck >/dev/null || ! command -v rpmbuild >/dev/null || ! command -v chromium >/dev/null \
    || [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || [ ! -d /usr/lib/postgresql ]; then
    as_root=()
    if [ "$(id -u)" -ne 0 ]; then
        if sudo -n true 2>/dev/null; then
            as_root=(sudo -n)
        else
            echo "tests/run.sh: some of $debs are missing; run as root or: apt-get install -y --no-install-recommends $debs" >&2
            exit 2
        fi
    fi
    # shellcheck disable=SC2086
    "${as_root[@]}" apt-get install -y --no-install-recommends $debs >/dev/null \
        || { "${as_root[@]}" apt-get update -qq && "${as_root[@]}" apt-get install -y --no-install-recommends $debs >/dev/null; }
fi
cloud-init --version 2>&1 | head -1

export CLOUDBURST_PYTHON=$repo/.venv/bin/python
export CLOUDBURST_REQUIRE_ORACLE=1
export TZ=UTC

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --release --workspace --all-targets -- -D warnings

step "cargo package: the ClassAd crate builds alone from what it would publish"
cargo package --quiet -p cloudburst-classad --allow-dirty

step "cargo test (release)"
cargo test --release --workspace --no-run
set +e
cargo test --release --workspace -- --nocapture > target/test-output.txt 2>&1
rc=$?
set -e
grep -E '^(test |generated|recorded|fixture|upstream|bounds|queue scale|job log|sim:|pilot:|packaging:|agent:|real pool:|test result|SKIPPED)' target/test-output.txt || true
if [ "$rc" -ne 0 ]; then
    echo "tests/run.sh: tests failed (full output in target/test-output.txt)" >&2
    grep -E -A 20 '^failures:|panicked' target/test-output.txt | head -80 >&2
    exit 1
fi

step "ClassAd benchmark against the official library"
./target/release/cloudburst bench classad --fixtures tests/data --python "$CLOUDBURST_PYTHON" --ads 100000 --runs 3

step "The README's first command: the simulator on the embedded site"
./target/release/cloudburst simulate --report target/simulate
grep -q '<svg' target/simulate/report.html

step "Planning benchmark: one cycle at 100,000 jobs and 5,000 nodes"
./target/release/cloudburst bench plan --python "$CLOUDBURST_PYTHON"

step "Simulator benchmark: all four policies on 20,000 real jobs, and on a whole year"
./target/release/cloudburst bench simulate --whole

step "Reaction benchmark: a cloud job's submit to its launch, the job log against condor_q polling"
./target/release/cloudburst bench reaction --python "$CLOUDBURST_PYTHON" --moto .venv/bin/moto_server

echo
echo "tests/run.sh: all passed"
