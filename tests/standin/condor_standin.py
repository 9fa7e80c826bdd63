#!/usr/bin/env python3
"""A TEST DOUBLE for the HTCondor command-line tools cloudburst runs.

Invoked as `condor_standin.py TOOL ARGS...` by wrapper scripts named
condor_q, condor_status, condor_drain, condor_off and condor_token_create
that the tests write into a temporary bin directory
(tests/support/standin.rs). It answers from a small pool model kept in the JSON
file named by $CONDOR_STANDIN_STATE, and prints every output, error text
and exit status in the exact form of the real HTCondor 25.14 captures in
tests/data/condor/live/cli/ (tests/condor_standin.rs checks that
byte for byte). Constraints and drain checks are evaluated with the
official ClassAd library (classad2), so they mean what they mean to a real
schedd or collector.

The model (all keys optional):
  schedds:   {NAME: {up, machine, address, jobs: [job ad as condor_q -json]}}
  startds:   {NAME: {address, master, gone, slots: [slot ad as condor_status -json]}}
             gone=true: the pilot has left but the collector still holds its
             ads (stale); its ads are still listed and commands "succeed".
  other_ads: {"collector": ad, ...}
  collector: {up, fresh}  fresh=true: just restarted, no startd ads yet
  faults:    {TOOL: {mode: hang|garbage|truncate|fail|empty|flood, count: N,
                    only_with: ARG, not_with: ARG}}
  log:       commands run (appended), tokens: tokens issued (no secrets)
It is not HTCondor and is never installed: it lives only under tests/.
"""

import base64
import fcntl
import json
import os
import sys
import time

import classad2

STATE = os.environ.get("CONDOR_STANDIN_STATE")


class Raw(float):
    """A JSON real kept with its original text, so re-printing is exact."""

    def __new__(cls, text):
        obj = super().__new__(cls, float(text))
        obj.text = text
        return obj


def load(f):
    return json.load(f, parse_float=Raw)


def esc(s):
    out = json.dumps(s, ensure_ascii=False)
    return out


def render_value(v, indent):
    pad = "  " * indent
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, Raw):
        return v.text
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        if v.startswith("/Expr(") and v.endswith(")/"):
            return '"\\/Expr(' + esc(v[6:-2])[1:-1] + ')\\/"'
        return esc(v)
    if isinstance(v, list):
        if not v:
            return "[\n" + pad + "]"
        items = [pad + "  " + render_value(x, indent + 1) for x in v]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    if isinstance(v, dict):
        return render_ad(v, indent)
    raise TypeError(type(v))


def render_ad(ad, indent=0):
    pad = "  " * indent
    keys = sorted(ad, key=str.lower)
    if not keys:
        return "{\n" + pad + "}"
    lines = [pad + "  " + esc(k) + ": " + render_value(ad[k], indent + 1) for k in keys]
    return "{\n" + ",\n".join(lines) + "\n" + pad + "}"


def render_json(ads):
    """condor_q/condor_status -json: nothing at all for no ads."""
    if not ads:
        return ""
    return "[\n" + "\n,\n".join(render_ad(a) for a in ads) + "\n]\n"


def json_expr(v):
    """Our model keeps expressions as "/Expr(...)/"; the JSON ClassAd
    parser knows them only in condor's escaped form, "\\/Expr(...)\\/"."""
    if isinstance(v, str) and v.startswith("/Expr(") and v.endswith(")/"):
        return "\\/Expr(" + json.dumps(v[6:-2])[1:-1] + ")\\/"
    return None


def to_classad(ad):
    """The ad as a classad2.ClassAd, expressions as expressions."""
    parts = []
    for k, v in ad.items():
        e = json_expr(v)
        parts.append(json.dumps(k) + ": " + ('"' + e + '"' if e else json.dumps(v)))
    return classad2.parseOne("{" + ", ".join(parts) + "}", classad2.ParserType.JSON)


def matches(constraint, ad):
    if constraint is None:
        return True
    value = classad2.ExprTree(constraint).eval(to_classad(ad))
    return value is True


def project(ad, attributes):
    if attributes is None:
        return dict(ad)
    wanted = {a.lower() for a in attributes}
    return {k: v for k, v in ad.items() if k.lower() in wanted}


def opt(args, name, takes_value=True):
    """Removes `-name [value]` from args; returns the value (or True)."""
    for i, a in enumerate(args):
        if a == name:
            if not takes_value:
                del args[i]
                return True
            value = args[i + 1]
            del args[i : i + 2]
            return value
    return None


def out(text):
    sys.stdout.write(text)


def err(text):
    sys.stderr.write(text)


SCHEDD_DOWN = """Error: Can't find address for schedd {machine}

Extra Info: You probably saw this error because the condor_schedd is not 
running on the machine you are trying to query. If the condor_schedd is not 
running, the Condor system will not be able to find an address and port to 
connect to and satisfy this request. Please make sure the Condor daemons are 
running and try again.
 
Extra Info: If the condor_schedd is running on the machine you are trying to 
query and you still see the error, the most likely cause is that you have 
setup a personal Condor, you have not defined SCHEDD_NAME in your 
condor_config file, and something is wrong with your SCHEDD_ADDRESS_FILE 
setting. You must define either or both of those settings in your config 
file, or you must use the -name option to condor_q. Please see the Condor 
manual for details on SCHEDD_NAME and SCHEDD_ADDRESS_FILE. 
"""

COLLECTOR_DOWN = "Error: communication error\nCEDAR:6001:Failed to connect to <127.0.0.1:9618>\n"


def condor_q(state, args):
    attributes = opt(args, "-attributes")
    attributes = attributes.split(",") if attributes else None
    constraint = opt(args, "-constraint")
    name = opt(args, "-name")
    is_global = opt(args, "-global", False)
    opt(args, "-allusers", False)
    opt(args, "-json", False)
    opt(args, "-pool")
    schedds = state.get("schedds", {})
    if is_global:
        # As captured: a dead schedd makes -global report empty queues.
        if any(not s.get("up", True) for s in schedds.values()):
            out("All queues are empty\n")
            return 0
        picked = list(schedds.values())
    else:
        if name is None:
            name = next(iter(schedds), None)
        elif not state.get("collector", {}).get("up", True):
            err(COLLECTOR_DOWN)
            return 1
        if name not in schedds:
            err("Error: Collector has no record of schedd/submitter\n")
            return 1
        picked = [schedds[name]]
    ads = []
    for s in picked:
        if not s.get("up", True):
            err(SCHEDD_DOWN.format(machine=s.get("machine", "vm")))
            return 1
        try:
            found = [a for a in s.get("jobs", []) if matches(constraint, a)]
        except Exception:
            err("\n-- Failed to fetch ads from: {} : {}\n\n".format(
                s.get("address", "<127.0.0.1:33333?addrs=127.0.0.1-33333&alias=vm>"),
                s.get("machine", "vm")))
            return 1
        ads.extend(project(a, attributes) for a in found)
    out(render_json(ads))
    return 0


def all_slots(state):
    for name, s in state.get("startds", {}).items():
        for slot in s.get("slots", []):
            yield name, slot


def condor_status(state, args):
    collector = state.get("collector", {})
    if not collector.get("up", True):
        err(COLLECTOR_DOWN)
        return 1
    attributes = opt(args, "-attributes")
    attributes = attributes.split(",") if attributes else None
    constraint = opt(args, "-constraint")
    opt(args, "-json", False)
    opt(args, "-pool")
    if opt(args, "-collector", False):
        ad = dict(state.get("other_ads", {}).get("collector", {}))
        if collector.get("fresh"):
            # As captured right after a restart: a new statistics window.
            now = int(time.time())
            ad.pop("DaemonStartTime", None)
            ad["StatsLifetime"] = 1
            ad["StatsLastUpdateTime"] = now
            ad["MyCurrentTime"] = now
        out(render_json([project(ad, attributes)]))
        return 0
    if opt(args, "-schedd", False):
        ads = [{"Name": n, "Machine": s.get("machine", "vm"), "MyType": "Scheduler"}
               for n, s in state.get("schedds", {}).items()]
        out(render_json([project(a, attributes) for a in ads if matches(constraint, a)]))
        return 0
    if opt(args, "-startd", False):
        err("stand-in: -startd returns daemon ads in 25.x; cloudburst must not use it\n")
        return 2
    if collector.get("fresh"):
        return 0
    try:
        ads = [project(slot, attributes) for _, slot in all_slots(state) if matches(constraint, slot)]
    except Exception:
        err("Error: Failed to parse constraint\n")
        return 1
    out(render_json(ads))
    return 0


def find_slot(state, slot_name):
    for name, s in state.get("startds", {}).items():
        for slot in s.get("slots", []):
            if slot.get("Name") == slot_name:
                return name, s
    return None, None


def drain_failure(s, slot, code, message):
    err("Attempt to send DRAIN_JOBS to startd {} failed\n"
        "Received failure from {} in response to DRAIN_JOBS request: error code {}: {}\n"
        .format(s.get("address", "<127.0.0.1:9620>"), slot, code, message))
    return 1


def condor_drain(state, args):
    opt(args, "-pool")
    cancel = opt(args, "-cancel", False)
    opt(args, "-graceful", False)
    reason = opt(args, "-reason") or "by command"
    check = opt(args, "-check")
    if len(args) != 1:
        err("ERROR: must specify one target machine\n")
        return 2
    target = args[0]
    name, s = find_slot(state, target)
    if s is None:
        err("ERROR: Can't find address for startd {}\n".format(target))
        return 1
    slots = s.get("slots", [])
    if cancel:
        if not s.get("gone"):
            for slot in slots:
                slot.pop("Draining", None)
                slot.pop("DrainReason", None)
                if slot.get("State") == "Drained":
                    slot["State"], slot["Activity"] = "Unclaimed", "Idle"
        out("Sent request to cancel draining on {}\n".format(target))
        return 0
    if not s.get("gone"):
        if any(slot.get("Draining") for slot in slots):
            return drain_failure(s, target, 10001, "Draining already in progress.")
        if check is not None:
            for slot in slots:
                if not matches(check, slot):
                    return drain_failure(
                        s, target, 10003,
                        "Draining check expression is false on {}.".format(slot["Name"]))
        busy = any(slot.get("SlotType") == "Dynamic" for slot in slots)
        for slot in slots:
            slot["Draining"] = True
            slot["DrainReason"] = reason
            if slot.get("SlotType") != "Dynamic":
                slot["State"] = "Drained"
                slot["Activity"] = "Retiring" if busy else "Idle"
    out("Sent request to drain the startd {} with {}. This only affects the single "
        "startd; any other startds running on the same host will not be drained.\n"
        .format(s.get("address", "<127.0.0.1:9620?addrs=127.0.0.1-9620&alias=vm>"), target))
    return 0


def condor_off(state, args):
    opt(args, "-pool")
    peaceful = opt(args, "-peaceful", False)
    startd_only = opt(args, "-startd", False)
    master = opt(args, "-master", False)
    name = opt(args, "-name")
    s = state.get("startds", {}).get(name)
    if s is None:
        err("Can't find address for {} {}\nCan't find address for {}\n"
            "Perhaps you need to query another pool.\n".format(
                "startd" if startd_only else "master", name, name))
        return 1
    if master:
        if s.get("gone"):
            err("Can't find address for master {}\nCan't find address for {}\n"
                "Perhaps you need to query another pool.\n".format(name, name))
            return 1
        out('Sent "Kill-Daemon" command for "master" to master {}\n'.format(name))
        del state["startds"][name]
        return 0
    if startd_only and peaceful:
        out('Sent "Set-Peaceful-Shutdown" command to startd {}\n'.format(name))
        if s.get("gone"):
            err("Can't find address for master {}\nCan't find address for {}\n"
                "Perhaps you need to query another pool.\n".format(name, name))
            return 1
        out('Sent "Kill-Daemon-Peacefully" command to master {}\n'.format(name))
        if not any(slot.get("SlotType") == "Dynamic" for slot in s.get("slots", [])):
            s["slots"] = []
        else:
            s["peaceful"] = True
        return 0
    err("stand-in: only -peaceful -startd and -master are modelled\n")
    return 2


def b64(obj):
    raw = json.dumps(obj, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def condor_token_create(state, args):
    identity = opt(args, "-identity")
    lifetime = opt(args, "-lifetime")
    key = opt(args, "-key") or "POOL"
    authz = []
    while True:
        a = opt(args, "-authz")
        if a is None:
            break
        authz.append(a)
    if not identity:
        err("condor_token_create: -identity is required\n")
        return 1
    now = int(time.time())
    payload = {"iat": now, "iss": "standin", "jti": os.urandom(8).hex(), "sub": identity}
    if lifetime:
        payload["exp"] = now + int(lifetime)
    if authz:
        payload["scope"] = " ".join("condor:/" + a for a in authz)
    state.setdefault("tokens", []).append(
        {"identity": identity, "authz": authz, "lifetime": lifetime, "key": key})
    out(b64({"alg": "HS256", "kid": key}) + "." + b64(payload) + "."
        + base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode() + "\n")
    return 0


TOOLS = {
    "condor_q": condor_q,
    "condor_status": condor_status,
    "condor_drain": condor_drain,
    "condor_off": condor_off,
    "condor_token_create": condor_token_create,
}


def fault(state, tool, args):
    f = state.get("faults", {}).get(tool)
    if not f:
        return None
    if "only_with" in f and f["only_with"] not in args:
        return None
    if "not_with" in f and f["not_with"] in args:
        return None
    count = f.get("count")
    if count is not None:
        if count <= 0:
            return None
        f["count"] = count - 1
    return f.get("mode")


def main():
    tool, args = sys.argv[1], sys.argv[2:]
    if STATE is None:
        err("stand-in: CONDOR_STANDIN_STATE is not set\n")
        return 2
    with open(STATE, "r+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        state = load(f)
        state.setdefault("log", []).append([tool] + args)
        mode = fault(state, tool, args)
        rc = None
        if mode == "fail":
            err("stand-in: injected failure\n")
            rc = 1
        elif mode == "garbage":
            out("\x00\x1b[31mSegmentation fault (core dumped)?? {{]]\n")
            rc = 0
        elif mode == "empty":
            rc = 0
        elif mode == "flood":
            flood_ad = next((slot for _, slot in all_slots(state)), {"Name": "slot1@flood"})
            rc = 0
        elif mode not in (None, "hang", "truncate"):
            err("stand-in: unknown fault mode {!r}\n".format(mode))
            rc = 2
        if rc is None and mode not in ("hang", "flood"):
            real_stdout = sys.stdout
            if mode == "truncate":
                import io
                sys.stdout = io.StringIO()
            rc = TOOLS[tool](state, list(args))
            if mode == "truncate":
                text = sys.stdout.getvalue()
                sys.stdout = real_stdout
                out(text[: len(text) // 2])
        f.seek(0)
        f.truncate()
        json.dump(state, f, indent=1, default=lambda r: r)
        f.write("\n")
    if mode == "hang":
        sys.stdout.flush()
        while True:
            time.sleep(3600)
    if mode == "flood":
        # Output without end (well-formed ads, 1000 names over and over)
        # until the caller's deadline kills us.
        chunk = "".join(
            render_ad(dict(flood_ad, Name="slot1@flood-%d" % i)) + "\n,\n" for i in range(1000))
        out("[\n")
        try:
            while True:
                out(chunk)
        except BrokenPipeError:
            return 1
    sys.stdout.flush()
    return rc


if __name__ == "__main__":
    sys.exit(main())
