"""Reference timing for `cloudburst bench plan`: the same job shapes matched
against the same flavour slot ads with the official ClassAd library (PyPI
htcondor, module classad2): every shape against every flavour, both ways,
as the negotiator does. Prints one JSON object."""
import json
import os
import sys
import time

os.environ.setdefault("CONDOR_CONFIG", "/dev/null")
import htcondor2  # noqa: F401  (daemon semantics, as the agent uses them)
import classad2
from classad2 import ParserType


def read_ads(path):
    with open(path) as f:
        chunks = [c for c in f.read().split("\n\n") if c.strip()]
    return [classad2.parseOne(c, ParserType.Old) for c in chunks]


def main():
    shapes_path, flavors_path, runs = sys.argv[1:4]
    shapes, flavors = read_ads(shapes_path), read_ads(flavors_path)
    best, matched = None, 0
    for _ in range(int(runs)):
        t0 = time.perf_counter()
        matched = 0
        for job in shapes:
            for machine in flavors:
                if job.matches(machine) and machine.matches(job):
                    matched += 1
        dt = time.perf_counter() - t0
        best = dt if best is None or dt < best else best
    pairs = len(shapes) * len(flavors)
    print(json.dumps({"pairs": pairs, "matched": matched, "secs": best,
                      "ns_per_pair": best / pairs * 1e9}))


main()
