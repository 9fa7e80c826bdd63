#!/usr/bin/env bash
# Runs every fuzz target for the given number of seconds (default 600),
# two at a time, seeded from the tests' HTCondor captures and oracle cases.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-600}
data=../data
mkdir -p corpus/parse_new corpus/parse_long corpus/parse_json corpus/eval
python3 - "$data" <<'PY'
import json, os, sys, glob
data = sys.argv[1]
for i, line in enumerate(open(os.path.join(data, "classad/cases.jsonl"))):
    c = json.loads(line)
    open(f"corpus/parse_new/case{i}", "w").write(c["expr"])
    my = c.get("my") or "[a = 1]"
    if my.startswith("["):
        open(f"corpus/eval/case{i}", "w").write(my.replace("\n", " ") + "\n" + c["expr"])
for f in glob.glob(os.path.join(data, "condor/**/*"), recursive=True):
    if os.path.isfile(f) and os.path.getsize(f) < 65536:
        name = f.replace("/", "_")
        kind = "parse_json" if f.endswith(".json") else "parse_long"
        open(f"corpus/{kind}/{name}", "wb").write(open(f, "rb").read())
PY
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O --fuzz-dir .
run() {
    cargo fuzz run -O --fuzz-dir . "$1" "corpus/$1" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 > "artifacts-$1.log" 2>&1
    echo "$1: $(grep -E '^Done [0-9]+ runs' "artifacts-$1.log" || echo FAILED, see tests/fuzz/artifacts-$1.log)"
}
run parse_new & run parse_long & wait
run parse_json & run eval & wait
