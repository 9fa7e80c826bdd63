"""Reference timings of the official ClassAd library (PyPI htcondor,
module classad2) for `cloudburst bench classad`: the same dump, pre-split
into one chunk per ad, parsed with parseNext(chunk, ParserType.Old); and
machine.matches(job) on the same pair of ads. Prints one JSON object."""
import json
import os
import sys
import time

os.environ.setdefault("CONDOR_CONFIG", "/dev/null")
import htcondor2  # noqa: F401  (daemon semantics, as the agent uses them)
import classad2
from classad2 import ParserType


def best_of(runs, fn):
    best = None
    for _ in range(runs):
        t0 = time.perf_counter()
        n = fn()
        dt = time.perf_counter() - t0
        best = dt if best is None or dt < best else best
    return n, best


def main():
    dump, job_path, machine_path, runs, matches = sys.argv[1:6]
    runs, matches = int(runs), int(matches)
    with open(dump) as f:
        chunks = [c for c in f.read().split("\n\n") if c.strip()]

    def parse_all():
        for c in chunks:
            classad2.parseNext(c, ParserType.Old)
        return len(chunks)

    n, secs = best_of(runs, parse_all)
    job = classad2.parseOne(open(job_path).read(), ParserType.Old)
    machine = classad2.parseOne(open(machine_path).read(), ParserType.Old)
    assert machine.matches(job), "the benchmark pair must match"

    def match_all():
        for _ in range(matches):
            machine.matches(job)
        return matches

    m, msecs = best_of(runs, match_all)
    print(json.dumps({
        "ads": n, "parse_secs": secs, "ads_per_sec": n / secs,
        "matches": m, "match_secs": msecs, "ns_per_match": msecs / m * 1e9,
    }))


main()
