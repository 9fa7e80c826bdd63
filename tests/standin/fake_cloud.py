#!/usr/bin/env python3
"""A cloud for the agent's process tests, behind the script provider's
protocol (packaging/providers/README.md): instances live in a JSON file.
Usage: fake_cloud.py STATE.json  (the request on stdin)."""

import json
import os
import sys
import time

state_path = sys.argv[1]
req = json.load(sys.stdin)
state = json.load(open(state_path)) if os.path.exists(state_path) else {"instances": [], "next": 1}


def save():
    tmp = state_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f)
    os.replace(tmp, state_path)


if req["action"] == "launch":
    for i in state["instances"]:
        if i["token"] == req["token"]:
            json.dump({"id": i["id"], "state": i["state"]}, sys.stdout)
            sys.exit(0)
    iid = "fc-%04d" % state["next"]
    state["next"] += 1
    state["instances"].append({"id": iid, "flavor": req["flavor"], "state": "running",
                               "pool": req["tags"].get("cloudburst:pool"), "node_id": req["node_id"],
                               "token": req["token"], "launched_at": int(time.time()),
                               "user_data_bytes": len(req["user_data_base64"])})
    save()
    json.dump({"id": iid, "state": "running"}, sys.stdout)
elif req["action"] == "list":
    json.dump({"instances": [i for i in state["instances"] if i["pool"] == req["pool"]]}, sys.stdout)
elif req["action"] == "terminate":
    for i in state["instances"]:
        if i["id"] == req["id"]:
            i["state"] = "terminated"
    save()
    json.dump({}, sys.stdout)
else:
    sys.stderr.write("unknown action\n")
    sys.exit(14)
