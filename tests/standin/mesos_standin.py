#!/usr/bin/env python3
"""A stand-in for the three Mesos-side HTTP services cloudburst reads.
No Mesos, Marathon or Aurora can be installed on these machines; the
answers below follow each one's official API documentation:

- Mesos master, v1 operator API, Mesos 1.11.0 (docs/operator-http-api.md,
  GET_STATE; include/mesos/v1/master/master.proto GetAgents/GetTasks;
  include/mesos/v1/mesos.proto Resource, Attribute, TaskState):
  POST /api/v1 {"type": "GET_STATE"}.
- Marathon REST API, Marathon 1.x (docs/rest-api/public/api/v2/queue.raml,
  types/queue.raml QueueApp/QueuePod/QueueDelay, types/app.raml,
  types/pod.raml): GET /v2/queue.
- Aurora scheduler, Aurora 0.22.0 (api.thrift getTasksWithoutConfigs,
  Response, ScheduledTask, TaskConfig, Resource; the /apibeta JSON form of
  the Thrift API, unions as {"field": value}, enums by name):
  POST /apibeta/getTasksWithoutConfigs.

Written here for the tests; not a copy of any of those projects' code.

Usage: mesos_standin.py STATE_FILE. Prints the port it listens on
(127.0.0.1). Every request reads STATE_FILE again, so a test (or the
end-to-end world) changes the answers by rewriting it:

  {"master":   {"file": PATH} | {"world": WORLD} | {"fault": F},
   "marathon": {"file": PATH} | {"queue": [APP]} | {"fault": F},
   "aurora":   {"file": PATH} | {"fault": F}}

DEACTIVATE_AGENT (POST /api/v1) answers 200 with no body and adds the
agent to STATE_FILE.deactivated (a JSON list), which GET_STATE renders as
"deactivated": true and the end-to-end world reads to stop placing tasks.

WORLD = {"agents": [{"id", "hostname", "attributes": "k:v;k:v", "cpus",
"mem", "disk", "recovered": bool}], "tasks": [{"id", "agent", "state",
"cpus", "mem"}]}, rendered as GET_STATE; APP = {"id", "cpus", "mem",
"instances", "count", "since"}, rendered as a QueueApp waiting for offers. A fixture file is served as it is
(its "_doc" key names the documentation it was written from). F is one of
"500", "garbage", "hang", "redirect" (a non-leading master's 307 to this
same server, once), or the service is absent from the state: 404. A
fault answers every call to its service, DEACTIVATE_AGENT included. With
"auth": "principal:secret" at the top, every call needs that HTTP basic
authentication (401 otherwise, with the WWW-Authenticate the master sends).
"""

import base64
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATE = sys.argv[1]


def scalar(name, value):
    return {"name": name, "type": "SCALAR", "role": "*", "scalar": {"value": float(value)}}


def attributes(text):
    """Mesos' --attributes syntax: name:value;... A number is a SCALAR,
    anything else TEXT (ranges and sets are not used by the pilots)."""
    out = []
    for part in filter(None, (text or "").split(";")):
        name, _, value = part.partition(":")
        try:
            out.append({"name": name, "type": "SCALAR", "scalar": {"value": float(value)}})
        except ValueError:
            out.append({"name": name, "type": "TEXT", "text": {"value": value}})
    return out


TERMINAL = {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST",
            "TASK_DROPPED", "TASK_GONE", "TASK_GONE_BY_OPERATOR"}


def deactivated():
    try:
        with open(STATE + ".deactivated") as f:
            return json.load(f)
    except (OSError, ValueError):
        return []


def get_state(world):
    framework = "3c1a7e5e-1b7a-4d7b-9a0e-6f3c0c1d2e3f-0000"
    off = deactivated()
    agents, recovered = [], []
    for a in world.get("agents", []):
        info = {
            "hostname": a["hostname"],
            "id": {"value": a["id"]},
            "port": 5051,
            "attributes": attributes(a.get("attributes")),
            "resources": [scalar("cpus", a["cpus"]), scalar("mem", a["mem"]),
                          scalar("disk", a["disk"]),
                          {"name": "ports", "type": "RANGES", "role": "*",
                           "ranges": {"range": [{"begin": 31000, "end": 32000}]}}],
        }
        if a.get("recovered"):
            recovered.append(info)
            continue
        used = [t for t in world.get("tasks", [])
                if t["agent"] == a["id"] and t["state"] not in TERMINAL]
        allocated = [scalar("cpus", sum(t["cpus"] for t in used)),
                     scalar("mem", sum(t["mem"] for t in used))] if used else []
        agents.append({
            "active": True,
            "deactivated": a["id"] in off,
            "agent_info": info,
            "pid": "slave(1)@10.0.0.1:5051",
            "registered_time": {"nanoseconds": 1763800000000000000},
            "total_resources": info["resources"],
            "allocated_resources": allocated,
            "version": "1.11.0",
        })

    def task(t):
        return {
            "name": t.get("name", t["id"]),
            "task_id": {"value": t["id"]},
            "framework_id": {"value": framework},
            "agent_id": {"value": t["agent"]},
            "state": t["state"],
            "resources": [scalar("cpus", t["cpus"]), scalar("mem", t["mem"])],
            "statuses": [{"task_id": {"value": t["id"]}, "state": t["state"],
                          "agent_id": {"value": t["agent"]}, "source": "SOURCE_EXECUTOR",
                          "timestamp": 1763800000.0}],
        }
    tasks = world.get("tasks", [])
    return {
        "type": "GET_STATE",
        "get_state": {
            "get_agents": {"agents": agents, "recovered_agents": recovered},
            "get_frameworks": {"frameworks": [{
                "active": True, "connected": True,
                "framework_info": {"id": {"value": framework}, "name": "marathon",
                                   "user": "root", "role": "*"}}]},
            "get_executors": {"executors": []},
            "get_tasks": {
                "tasks": [task(t) for t in tasks if t["state"] not in TERMINAL],
                "completed_tasks": [task(t) for t in tasks if t["state"] in TERMINAL],
            },
        },
    }


def marathon_queue(apps):
    return {"queue": [{
        "app": {"id": a["id"], "cmd": "sleep 1", "instances": a["instances"],
                "cpus": float(a["cpus"]), "mem": float(a["mem"]), "disk": 0.0, "gpus": 0,
                "constraints": [], "backoffSeconds": 1, "backoffFactor": 1.15,
                "maxLaunchDelaySeconds": 300},
        "count": a["count"],
        "delay": {"timeLeftSeconds": 0, "overdue": True},
        "since": a.get("since", "2026-11-22T00:00:00.000Z"),
        "processedOffersSummary": {"processedOffersCount": 0, "unusedOffersCount": 0},
    } for a in apps if a["count"] > 0]}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=()):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def serve(self, service, body=b"", expect_body=None, answer=None):
        """Answers as `service`'s state says: its auth and fault first,
        then `answer()` if given, else its world, queue or file. Each
        request is counted in STATE.requests (one line per request)."""
        with open(STATE + ".requests", "a") as f:
            f.write(service + "\n")
        with open(STATE) as f:
            state = json.load(f)
        if "auth" in state:
            want = "Basic " + base64.b64encode(state["auth"].encode()).decode()
            if self.headers.get("Authorization") != want:
                return self.reply(401, b"", [("WWW-Authenticate", 'Basic realm="mesos"')])
        conf = state.get(service)
        if conf is None:
            return self.reply(404, {"message": "no %s here" % service})
        fault = conf.get("fault")
        if fault == "500":
            return self.reply(500, {"message": "Internal Server Error"})
        if fault == "garbage":
            return self.reply(200, b"<html><body>503 Service Unavailable</body></html>")
        if fault == "hang":
            time.sleep(60)
            return self.reply(200, {})
        if fault == "redirect" and not self.path.endswith("?led"):
            # What a non-leading master answers: the leader's address.
            port = self.server.server_address[1]
            return self.reply(307, b"", [("Location", "http://127.0.0.1:%d%s?led" % (port, self.path))])
        if expect_body is not None and json.loads(body or b"null") != expect_body:
            return self.reply(400, {"message": "unexpected request body %r" % body})
        if answer is not None:
            return answer()
        if "world" in conf:
            return self.reply(200, get_state(conf["world"]))
        if "queue" in conf:
            return self.reply(200, marathon_queue(conf["queue"]))
        with open(conf["file"], "rb") as f:
            return self.reply(200, f.read())

    def do_POST(self):
        path = self.path.split("?")[0]
        body = self.body()
        if path == "/api/v1":
            try:
                call = json.loads(body or b"null") or {}
            except ValueError:
                call = {}
            if call.get("type") == "DEACTIVATE_AGENT":
                return self.serve("master", answer=lambda: self.deactivate(call))
            return self.serve("master", body, {"type": "GET_STATE"})
        if path == "/apibeta/getTasksWithoutConfigs":
            return self.serve("aurora", body, {"query": {"statuses": ["PENDING", "THROTTLED"]}})
        self.reply(404, {"message": "no such endpoint"})

    def deactivate(self, call):
        agent = call.get("deactivate_agent", {}).get("agent_id", {}).get("value")
        if not agent:
            return self.reply(400, {"message": "Expecting 'deactivate_agent.agent_id' to be present"})
        off = deactivated()
        if agent not in off:
            off.append(agent)
        tmp = STATE + ".deactivated.tmp"
        with open(tmp, "w") as f:
            json.dump(off, f)
        os.replace(tmp, STATE + ".deactivated")
        self.reply(200, b"")

    def do_GET(self):
        if self.path.split("?")[0] == "/v2/queue":
            return self.serve("marathon")
        self.reply(404, {"message": "no such endpoint"})


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
