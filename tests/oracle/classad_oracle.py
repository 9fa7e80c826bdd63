#!/usr/bin/env python3
"""The ClassAd differential oracle: the official library answers each case.

Reads cases as JSON lines on stdin and writes one answer line per case,
in the protocol `cloudburst classad eval` speaks (tests/classad_oracle.rs
compares the two):

  in   {"expr": "...", "my": AD|null, "target": AD|null,
        "op": "eval"|"match"|"symmetric", "id": ...}
       AD is new-syntax text "[a = 1]", old-syntax text (condor_q -long
       lines) or JSON text "{...}".
  out  {"ok": true, "type": T, "value": V, "id": ...}
       T: integer real string boolean undefined error list classad
          abstime reltime; V: the value as the library unparses it.
       {"ok": false, "parse_error": "expr"|"my"|"target", "msg": ...}
       {"ok": false, "eval_error": ..., "msg": ...}

Semantics are a daemon's: importing htcondor2 configures the library as
every HTCondor daemon is configured by default (old-ClassAd lookups that
fall back to the other ad; HTCondor's own functions such as split and
stringListMember). With --strict, STRICT_CLASSAD_EVALUATION is on.
"""
import datetime
import json
import os
import sys
import time

# Local-time functions answer for UTC, as the tests run ours.
os.environ["TZ"] = "UTC"
time.tzset()
# No condor_config to find, none to warn about.
os.environ.setdefault("CONDOR_CONFIG", "/dev/null")
if "--strict" in sys.argv[1:]:
    os.environ["_CONDOR_STRICT_CLASSAD_EVALUATION"] = "true"

import htcondor2  # noqa: E402,F401  the import is what sets daemon semantics
import classad2  # noqa: E402

WRAP = "oracle_case_expression"


class ParseFailed(Exception):
    def __init__(self, part, cause):
        super().__init__(str(cause))
        self.part = part


def expression(text):
    """One expression, refusing text that would add attributes to the
    wrapper ad ("1; b = 2") or say nothing."""
    ad = classad2.ClassAd("[" + WRAP + " = " + text + "\n]")
    if list(ad.keys()) != [WRAP]:
        raise ValueError("not one expression")
    return ad.lookup(WRAP)


def ad_of(text):
    if text is None:
        return None
    if isinstance(text, dict):
        return classad2.ClassAd(text)
    body = text.strip()
    if body.startswith("["):
        return classad2.ClassAd(body)
    if body.startswith("{"):
        return classad2.parseOne(body, classad2.ParserType.JSON)
    ad = classad2.parseOne(body, classad2.ParserType.Old)
    if body and len(ad) == 0:
        raise ValueError("old-syntax text gave no attribute")
    return ad


def kind(value, printed):
    if isinstance(value, classad2.Value):
        return "undefined" if value == classad2.Value.Undefined else "error"
    # bool before int: a Python bool is an int.
    for py, name in ((bool, "boolean"), (int, "integer"), (str, "string"),
                     (list, "list"), (classad2.ClassAd, "classad"),
                     (datetime.datetime, "abstime")):
        if isinstance(value, py):
            return name
    if isinstance(value, float):
        # The library hands a relative time back as seconds.
        return "reltime" if printed.startswith("relTime(") else "real"
    return type(value).__name__


def answer(case):
    op = case.get("op", "eval")
    try:
        ads = {}
        for part in ("my", "target"):
            try:
                ads[part] = ad_of(case.get(part))
            except Exception as e:
                raise ParseFailed(part, e)
        my, target = ads["my"], ads["target"]
        if op in ("match", "symmetric"):
            my = classad2.ClassAd() if my is None else my
            target = classad2.ClassAd() if target is None else target
            # target.matches(my): my's Requirements hold against target.
            hit = target.matches(my) if op == "match" else my.symmetricMatch(target)
            return {"ok": True, "type": "boolean", "value": "true" if hit else "false"}
        try:
            expr = expression(case["expr"])
        except Exception as e:
            raise ParseFailed("expr", e)
    except ParseFailed as e:
        return {"ok": False, "parse_error": e.part, "msg": str(e)}
    # With no MY ad the library would ignore TARGET: give it an empty one.
    if my is None and target is not None:
        my = classad2.ClassAd()
    try:
        value = expr.eval(scope=my, target=target)
        printed = repr(expr.simplify(scope=my, target=target))
    except Exception as e:
        return {"ok": False, "eval_error": type(e).__name__, "msg": str(e)}
    return {"ok": True, "type": kind(value, printed), "value": printed}


def main():
    for line in sys.stdin:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            case = json.loads(line)
        except ValueError as e:
            out = {"ok": False, "input_error": str(e)}
        else:
            out = answer(case)
            if "id" in case:
                out["id"] = case["id"]
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
