#!/usr/bin/env python3
"""A TEST DOUBLE for the rest of the world the end-to-end tests need: the
pilots booting, joining the pool and running jobs.

It ticks in real time beside a running `cloudburst agent` and owns nothing
the agent decides. Each tick, holding the condor stand-in's state lock
(tests/standin/condor_standin.py):

- reads this pool's instances from the EC2 API (moto, directly, never
  through the test's fault proxy), or from a real Nova as its admin;
- a running instance "boots": its user-data is read back from the EC2 API
  (DescribeInstanceAttribute), parsed as the #cloud-config it is, and the
  condor config it writes is read with HTCondor's own config reader
  (htcondor2.param). The startd's slot ad is built from what that config
  says (NUM_CPUS, MEMORY, START, every STARTD_ATTRS entry) on top of the
  real captured cloud pilot's p-slot ad. A pilot whose user-data lacks the
  condor config, the token file or the instance-id step, or names another
  central manager, never joins (the reason is reported);
- negotiates: idle jobs are matched to unclaimed room with classad2's
  symmetric match (job Requirements against the slot, the slot's
  Requirements = START && WithinResourceLimits against the job), as a
  real negotiator would, and run for their `E2EDuration` seconds in
  dynamic slots shaped like the captured one;
- a job whose startd or instance vanished while it ran is a KILLED job
  (the invariant the agent must never break); it goes back to idle, as
  condor would requeue it.

It writes a report (JSON, replaced atomically) each tick: instances seen,
live, the most ever live at once, joins, refusals, jobs completed and
killed. It is not HTCondor and is never installed: it lives only under
tests/.

Usage: pool_world.py CONFIG.json   (keys: state, endpoint, pool,
central_manager, report, dir, live (the captures), tick, boot_seconds;
for Nova instead of EC2: nova, keystone, admin_password)
"""

import base64
import copy
import fcntl
import gzip
import json
import os
import re
import sys
import time

import boto3
import classad2
import htcondor2
import yaml

from condor_standin import to_classad

CONDOR_CONFIG = "/etc/condor/config.d/50-cloudburst.conf"
TOKEN_FILE = "/etc/condor/tokens.d/cloudburst-pilot.token"
MESOS_UNIT = "/etc/systemd/system/cloudburst-mesos-agent.service"


def captured_slots(live):
    with open(os.path.join(live, "condor_status.json")) as f:
        slots = json.load(f)
    pslot = next(s for s in slots if s["Name"] == "slot1@cloudpilot@vm")
    dslot = next(s for s in slots if s["Name"] == "slot1_1@cloudpilot@vm")
    return pslot, dslot


def expr_or_literal(text):
    """A config value as condor_status -json would print the attribute."""
    try:
        v = classad2.ExprTree(text).eval()
    except Exception:
        return "/Expr(" + text + ")/"
    if isinstance(v, (bool, int, float, str)) and not isinstance(v, classad2.Value):
        return v
    return "/Expr(" + text + ")/"


class World:
    def __init__(self, cfg):
        self.cfg = cfg
        self.nova = cfg.get("nova")
        self.token = None
        if self.nova is None:
            self.ec2 = boto3.client(
                "ec2", endpoint_url=cfg["endpoint"], region_name="us-east-1",
                aws_access_key_id="testing", aws_secret_access_key="testing")
        self.pslot, self.dslot = captured_slots(cfg["live"])
        self.first_running = {}   # instance id -> when first seen running
        self.nodes = {}           # instance id -> machine (joined)
        self.refused = {}         # instance id -> why it never joined
        self.seen = {}            # instance id -> instance type
        self.max_live = 0
        self.running = {}         # job id -> (machine, dslot name, ends at)
        self.completed = []
        self.killed = []
        self.retire = {}          # machine -> (MAXJOBRETIREMENTTIME, MachineMaxVacateTime)
        self.ec2_errors = 0
        self.ticks = 0
        self.live = 0
        # The Mesos side (cfg["mesos"]): agents from the pilots' Mesos unit,
        # tasks of the apps in the control file, placed as a master and
        # Marathon would place them, and the stand-in's answers written.
        self.mesos = cfg.get("mesos")
        self.agents = {}          # instance id -> agent
        self.tasks = []           # {id, app, agent, iid, state, cpus, mem, ends}
        self.mesos_completed = 0
        self.mesos_killed = []

    # -- the cloud side ---------------------------------------------------

    def nova_get(self, path):
        """GET from the real Nova as its admin (every project's servers,
        user_data shown: microversion 2.47)."""
        import urllib.request
        if self.token is None:
            body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"id": "default"},
                "password": self.cfg["admin_password"]}}},
                "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
            req = urllib.request.Request(self.cfg["keystone"] + "/auth/tokens", method="POST",
                                         data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=30) as r:
                self.token = r.headers["X-Subject-Token"]
        req = urllib.request.Request(self.nova + path, headers={
            "X-Auth-Token": self.token, "OpenStack-API-Version": "compute 2.47"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)

    def instances(self):
        if self.nova is not None:
            # Nova's servers in the EC2 shape the rest of the world reads.
            state = {"BUILD": "pending", "ACTIVE": "running", "ERROR": "stopped",
                     "DELETED": "terminated", "SOFT_DELETED": "terminated"}
            out = []
            for s in self.nova_get("/servers/detail?all_tenants=1")["servers"]:
                if s.get("metadata", {}).get("cloudburst:pool") != self.cfg["pool"]:
                    continue
                if s.get("OS-EXT-STS:task_state") == "deleting":
                    continue
                out.append({"InstanceId": s["id"], "InstanceType": s["flavor"]["original_name"],
                            "State": {"Name": state.get(s["status"], "pending")},
                            "PrivateDnsName": s["name"].lower(),
                            "UserData": s.get("OS-EXT-SRV-ATTR:user_data") or ""})
            return out
        out = []
        pages = self.ec2.get_paginator("describe_instances").paginate(
            Filters=[{"Name": "tag:cloudburst:pool", "Values": [self.cfg["pool"]]}])
        for page in pages:
            for r in page["Reservations"]:
                out.extend(r["Instances"])
        return out

    def user_data(self, inst):
        if self.nova is not None:
            raw = base64.b64decode(inst["UserData"])
        else:
            a = self.ec2.describe_instance_attribute(InstanceId=inst["InstanceId"], Attribute="userData")
            raw = base64.b64decode(a.get("UserData", {}).get("Value", ""))
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        return raw.decode()

    def boot(self, inst, now):
        """The pilot's boot: its user-data to a startd ad, or why not."""
        iid = inst["InstanceId"]
        text = self.user_data(inst)
        if not text.startswith("#cloud-config\n"):
            return None, "user-data is not #cloud-config"
        doc = yaml.safe_load(text)
        files = {f["path"]: f.get("content", "") for f in doc.get("write_files", [])}
        if CONDOR_CONFIG not in files:
            return None, "no condor config in the user-data"
        if not files.get(TOKEN_FILE, "").strip():
            return None, "no pilot token: the collector would refuse the startd"
        runcmd = [c if isinstance(c, str) else " ".join(c) for c in doc.get("runcmd", [])]
        if not any("cloud-init query v1.instance_id" in c for c in runcmd):
            return None, "the instance id is never written"
        path = os.path.join(self.cfg["dir"], "nodes", iid)
        os.makedirs(path, exist_ok=True)
        conf = os.path.join(path, "condor_config")
        with open(conf, "w") as f:
            f.write(files[CONDOR_CONFIG])
            # What the runcmd step writes at boot (51-cloudburst-instance.conf):
            # the instance id, and the hard stop it fixes (boot + N seconds).
            f.write('\nCloudInstanceID = "%s"\n' % iid)
            stop = next((re.search(r"\+ (\d+) \)\)", c) for c in runcmd if "CLOUDBURST_HARD_STOP" in c), None)
            if stop is not None:
                f.write("CLOUDBURST_HARD_STOP = %d\n" % (int(now) + int(stop.group(1))))
        os.environ["CONDOR_CONFIG"] = conf
        htcondor2.reload_config()
        p = htcondor2.param
        cm = self.cfg["central_manager"]
        if str(p.get("COLLECTOR_HOST", "")).split(":")[0] != cm.split(":")[0]:
            return None, "the pilot reports to %r, not %r" % (p.get("COLLECTOR_HOST"), cm)
        machine = inst.get("PrivateDnsName") or iid
        ad = copy.deepcopy(self.pslot)
        cpus, memory = int(p["NUM_CPUS"]), int(p["MEMORY"])
        for name in str(p["STARTD_ATTRS"]).replace(",", " ").split():
            if name in p:
                ad[name] = expr_or_literal(str(p[name]))
        ad.update({
            "Name": "slot1@" + machine, "Machine": machine,
            "MyAddress": "<10.0.0.1:9618?alias=%s>" % machine,
            "Start": "/Expr(" + str(p.get("START", "true")) + ")/",
            "Cpus": cpus, "TotalSlotCpus": cpus, "TotalCpus": cpus, "DetectedCpus": cpus,
            "Memory": memory, "TotalSlotMemory": memory, "TotalMemory": memory,
            "DetectedMemory": memory,
            "FileSystemDomain": str(p.get("FILESYSTEM_DOMAIN", machine)),
            "UidDomain": str(p.get("UID_DOMAIN", machine)),
            "State": "Unclaimed", "Activity": "Idle",
            "NumDynamicSlots": 0, "ChildState": [], "ChildCpus": [], "ChildRemoteUser": [],
            "DaemonStartTime": int(now), "LastHeardFrom": int(now), "MyCurrentTime": int(now),
            "EnteredCurrentState": int(now),
            "AuthenticatedIdentity": "pilot@cloudburst",
        })
        ad.pop("Draining", None)
        ad.pop("DrainReason", None)
        # Retirement as the real startd grants it: the pilot's expression,
        # evaluated per job; eviction begins once less than the vacate time
        # is left (seen on a real 25.14 startd).
        retire = str(p.get("MAXJOBRETIREMENTTIME", "0"))
        vacate = classad2.ExprTree(str(p.get("MachineMaxVacateTime", "10 * 60"))).eval()
        self.retire[machine] = (retire, int(vacate))
        ad["MaxJobRetirementTime"] = expr_or_literal(retire)
        ad["MachineMaxVacateTime"] = int(vacate)
        if self.mesos is not None and MESOS_UNIT in files:
            self.register_agent(iid, machine, files[MESOS_UNIT])
        return ad, None

    def register_agent(self, iid, machine, unit):
        """The pilot's mesos-agent registers with the master: its share
        and attributes as its unit's command line gives them."""
        line = next(l for l in unit.splitlines() if l.startswith("ExecStart="))
        args = dict(a[2:].split("=", 1) for a in line.split()[1:] if a.startswith("--"))
        res = dict(r.split(":", 1) for r in args["resources"].split(";"))
        self.agents[iid] = {
            "id": "E2E-S%d" % len(self.agents), "hostname": machine,
            "attributes": args.get("attributes", ""),
            "cpus": float(res["cpus"]), "mem": float(res["mem"]),
            "disk": float(res.get("disk", 10240)),
        }

    # -- one tick ---------------------------------------------------------

    def tick(self, state, now):
        self.ticks += 1
        try:
            insts = self.instances()
        except Exception:
            self.ec2_errors += 1
            return
        live = [i for i in insts if i["State"]["Name"] in ("pending", "running", "stopping", "stopped")]
        self.live = len(live)
        self.max_live = max(self.max_live, self.live)
        startds = state.setdefault("startds", {})
        by_id = {i["InstanceId"]: i for i in insts}
        for i in insts:
            self.seen[i["InstanceId"]] = i["InstanceType"]
        # Pilots whose instance went away leave the pool, with their jobs
        # and their Mesos tasks.
        for iid, machine in list(self.nodes.items()):
            inst = by_id.get(iid)
            if inst is None or inst["State"]["Name"] not in ("pending", "running"):
                startds.pop(machine, None)
                del self.nodes[iid]
                self.agents.pop(iid, None)
                for t in self.tasks:
                    if t["iid"] == iid and t["state"] == "TASK_RUNNING":
                        t["state"] = "TASK_LOST"
                        self.mesos_killed.append({"task": t["id"], "machine": machine, "at": now})
        # Jobs whose slot vanished were killed.
        jobs = {j["GlobalJobId"]: j for s in state.get("schedds", {}).values() for j in s.get("jobs", [])}
        for jid, (machine, dname, _) in list(self.running.items()):
            s = startds.get(machine)
            if s is None or not any(sl["Name"] == dname for sl in s.get("slots", [])):
                self.killed.append({"job": jid, "machine": machine, "at": now})
                del self.running[jid]
                j = jobs.get(jid)
                if j is not None:
                    j["JobStatus"] = 1
                    j.pop("RemoteHost", None)
        # Boots.
        for i in live:
            iid = i["InstanceId"]
            if i["State"]["Name"] != "running" or iid in self.nodes or iid in self.refused:
                continue
            since = self.first_running.setdefault(iid, now)
            if now - since < self.cfg.get("boot_seconds", 0.5):
                continue
            ad, why = self.boot(i, now)
            if ad is None:
                self.refused[iid] = why
                continue
            startds[ad["Machine"]] = {
                "address": ad["MyAddress"], "master": True, "slots": [ad]}
            self.nodes[iid] = ad["Machine"]
        # Finished jobs leave the queue and free their room.
        for jid, (machine, dname, ends) in list(self.running.items()):
            if now < ends:
                continue
            del self.running[jid]
            self.completed.append(jid)
            for s in state.get("schedds", {}).values():
                s["jobs"] = [j for j in s.get("jobs", []) if j["GlobalJobId"] != jid]
            s = startds.get(machine)
            if s is not None:
                self.release(s, dname)
        # Negotiation.
        for s in state.get("schedds", {}).values():
            if not s.get("up", True):
                continue
            for j in s.get("jobs", []):
                if j.get("JobStatus") == 1:
                    self.negotiate(j, startds, now)
        self.retirement(startds, jobs, now)
        for s in startds.values():
            for sl in s.get("slots", []):
                sl["LastHeardFrom"] = int(now)
                sl["MyCurrentTime"] = int(now)
        if self.mesos is not None:
            self.mesos_tick(now)

    def retirement(self, startds, jobs, now):
        """Each claimed slot's RetirementTimeRemaining; on a draining
        startd, a job with less retirement left than its vacate time is
        evicted, as the real startd does."""
        for machine, s in startds.items():
            expr, vacate = self.retire.get(machine, ("0", 600))
            slots = s.get("slots", [])
            draining = any(sl.get("Draining") for sl in slots)
            for d in [sl for sl in slots if sl.get("SlotType") == "Dynamic"]:
                ad = classad2.ClassAd()
                ad["JobStart"] = int(d.get("JobStart", now))
                r = classad2.ExprTree(expr).eval(ad)
                r = int(r) if isinstance(r, (int, float)) and not isinstance(r, bool) else 0
                left = max(0, r - (int(now) - int(d.get("JobStart", now))))
                d["RetirementTimeRemaining"] = left
                d["MaxJobRetirementTime"] = expr_or_literal(expr)
                d["MachineMaxVacateTime"] = vacate
                if draining and left < vacate:
                    jid = d.get("GlobalJobId")
                    self.killed.append({"job": jid, "machine": machine, "at": now, "why": "evicted by the drain"})
                    self.running.pop(jid, None)
                    j = jobs.get(jid)
                    if j is not None:
                        j["JobStatus"] = 1
                        j.pop("RemoteHost", None)
                    self.release(s, d["Name"])

    def mesos_tick(self, now):
        try:
            with open(self.mesos["control"]) as f:
                control = json.load(f)
        except (OSError, ValueError):
            control = {}
        apps = control.get("apps", [])
        for t in self.tasks:
            if t["state"] == "TASK_RUNNING" and now >= t["ends"]:
                t["state"] = "TASK_FINISHED"
                self.mesos_completed += 1
        try:
            with open(self.mesos["state"] + ".deactivated") as f:
                off = set(json.load(f))
        except (OSError, ValueError):
            off = set()
        queue = []
        for app in apps:
            done = [t for t in self.tasks if t["app"] == app["id"]
                    and t["state"] in ("TASK_RUNNING", "TASK_FINISHED")]
            pending = app["instances"] - len(done)
            # The master offers each agent's free share; Marathon takes it.
            for iid, a in sorted(self.agents.items()):
                while pending > 0 and a["id"] not in off:
                    used = [t for t in self.tasks if t["iid"] == iid and t["state"] == "TASK_RUNNING"]
                    if (a["cpus"] - sum(t["cpus"] for t in used) < app["cpus"] - 1e-9
                            or a["mem"] - sum(t["mem"] for t in used) < app["mem"]):
                        break
                    self.tasks.append({
                        "id": "%s.%d" % (app["id"].strip("/").replace("/", "_"), len(self.tasks)),
                        "app": app["id"], "agent": a["id"], "iid": iid, "state": "TASK_RUNNING",
                        "cpus": app["cpus"], "mem": app["mem"], "ends": now + app["seconds"]})
                    pending -= 1
            queue.append({"id": app["id"], "cpus": app["cpus"], "mem": app["mem"],
                          "instances": app["instances"], "count": max(0, pending)})
        state = {
            "master": {"world": {
                "agents": list(self.agents.values()),
                "tasks": [{k: t[k] for k in ("id", "agent", "state", "cpus", "mem")} for t in self.tasks],
            }},
            "marathon": {"queue": queue},
        }
        # The test can make the master fail (the stand-in's faults).
        if control.get("master_fault"):
            state["master"]["fault"] = control["master_fault"]
        tmp = self.mesos["state"] + ".tmp"
        with open(tmp, "w") as f:
            json.dump(state, f)
        os.replace(tmp, self.mesos["state"])

    def release(self, s, dname):
        slots = s.get("slots", [])
        d = next((sl for sl in slots if sl["Name"] == dname), None)
        if d is None:
            return
        slots.remove(d)
        p = next((sl for sl in slots if sl.get("SlotType") == "Partitionable"), None)
        if p is not None:
            p["Cpus"] += d["Cpus"]
            p["Memory"] += d["Memory"]
            p["NumDynamicSlots"] = max(0, p.get("NumDynamicSlots", 1) - 1)
            for key in ("ChildState", "ChildCpus", "ChildRemoteUser"):
                if p.get(key):
                    p[key] = p[key][1:]
            if p.get("State") == "Drained":
                p["Activity"] = "Idle" if not p["NumDynamicSlots"] else "Retiring"
        if s.get("peaceful") and not any(sl.get("SlotType") == "Dynamic" for sl in slots):
            s["slots"] = []   # condor_off -peaceful: the startd exits when its jobs are done

    def negotiate(self, job, startds, now):
        jad = to_classad(job)
        for machine in sorted(startds):
            s = startds[machine]
            if s.get("peaceful") or s.get("gone"):
                continue
            p = next((sl for sl in s.get("slots", []) if sl.get("SlotType") == "Partitionable"), None)
            if p is None or p.get("Draining") or p.get("State") == "Drained":
                continue
            if not jad.symmetricMatch(to_classad(p)):
                continue
            n = 1 + max([int(sl["Name"].split("@")[0].split("_")[1])
                         for sl in s["slots"] if sl.get("SlotType") == "Dynamic"] + [0])
            d = copy.deepcopy(self.dslot)
            cpus, memory = int(job.get("RequestCpus", 1)), int(job.get("RequestMemory", 1))
            d.update({
                "Name": "slot1_%d@%s" % (n, machine), "Machine": machine,
                "Cpus": cpus, "Memory": memory, "TotalSlotCpus": cpus, "TotalSlotMemory": memory,
                "JobId": "%d.%d" % (job["ClusterId"], job["ProcId"]),
                "GlobalJobId": job["GlobalJobId"], "RemoteUser": job.get("User"),
                "RemoteOwner": job.get("User"), "JobStart": int(now),
                "EnteredCurrentState": int(now),
            })
            for k in p:
                if k.startswith("Cloud"):
                    d[k] = p[k]
            p["Cpus"] -= cpus
            p["Memory"] -= memory
            p["NumDynamicSlots"] = p.get("NumDynamicSlots", 0) + 1
            p["ChildState"] = list(p.get("ChildState", [])) + ["Claimed"]
            p["ChildCpus"] = list(p.get("ChildCpus", [])) + [cpus]
            p["ChildRemoteUser"] = list(p.get("ChildRemoteUser", [])) + [job.get("User")]
            s["slots"].append(d)
            job["JobStatus"] = 2
            job["RemoteHost"] = d["Name"]
            self.running[job["GlobalJobId"]] = (machine, d["Name"], now + float(job.get("E2EDuration", 2)))
            return

    def report(self):
        return {
            "ticks": self.ticks, "seen": len(self.seen), "types": self.seen, "live": self.live,
            "max_live": self.max_live, "joined": sorted(self.nodes.values()),
            "joins_total": len(self.first_running) - len(self.refused),
            "refused": self.refused, "running": len(self.running),
            "completed": self.completed, "killed": self.killed,
            "ec2_errors": self.ec2_errors,
            "mesos_agents": len(self.agents),
            "mesos_running": sum(t["state"] == "TASK_RUNNING" for t in self.tasks),
            "mesos_completed": self.mesos_completed,
            "mesos_killed": self.mesos_killed,
        }


def main():
    with open(sys.argv[1]) as f:
        cfg = json.load(f)
    world = World(cfg)
    while True:
        now = time.time()
        with open(cfg["state"], "r+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            state = json.load(f)
            world.tick(state, now)
            # The stand-in's command log grows without bound over a long
            # campaign; the tests read only its tail.
            state["log"] = state.get("log", [])[-200:]
            f.seek(0)
            f.truncate()
            json.dump(state, f, indent=1)
            f.write("\n")
        tmp = cfg["report"] + ".tmp"
        with open(tmp, "w") as f:
            json.dump(world.report(), f)
        os.replace(tmp, cfg["report"])
        if os.path.exists(cfg["report"] + ".stop"):
            return 0
        time.sleep(cfg.get("tick", 0.1))


if __name__ == "__main__":
    sys.exit(main())
