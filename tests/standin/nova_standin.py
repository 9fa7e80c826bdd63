#!/usr/bin/env python3
"""A stand-in for the parts of an OpenStack cloud cloudburst calls: Nova
(compute API v2.1 at microversion 2.47), and the one Glance and Neutron
call each that resolve names. It sits behind a real Keystone: every
request's X-Auth-Token is validated against that Keystone (GET
/v3/auth/tokens), as keystonemiddleware does for a real Nova, and servers
belong to the token's project.

Response shapes, status codes and headers follow the official API
references (Compute API v2.1 "Servers", "Flavors", "Limits", "Versions"
and the fault format; Image API v2 "List images"; Networking API v2.0
"List networks"), quoted where they matter. Not a copy of any OpenStack
code: written here for the tests.

Usage: nova_standin.py PORT KEYSTONE_URL
Test controls (not OpenStack APIs): POST /_standin/quota {"instances": N,
"cores": N}; GET /_standin/servers (everything, user_data included).
"""

import base64
import json
import re
import sys
import threading
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

PORT = int(sys.argv[1])
KEYSTONE = sys.argv[2].rstrip("/")
LOCAL = threading.local()


def base():
    # Links point where the client came from (Nova builds them from the
    # request's host too), so a proxy in front stays in the path.
    return getattr(LOCAL, "base", "http://127.0.0.1:%d" % PORT)


MICRO_MIN, MICRO_MAX = (2, 1), (2, 96)

LOCK = threading.Lock()
FLAVORS = [  # Jetstream2's m3 family (ids as strings, as Nova returns them)
    {"id": "1", "name": "m3.tiny", "vcpus": 1, "ram": 3072, "disk": 20},
    {"id": "2", "name": "m3.small", "vcpus": 2, "ram": 6144, "disk": 20},
    {"id": "3", "name": "m3.quad", "vcpus": 4, "ram": 15360, "disk": 20},
    {"id": "4", "name": "m3.medium", "vcpus": 8, "ram": 30720, "disk": 60},
]
IMAGES = [
    {"id": "5f2f6a1d-8b0e-4a3c-9a59-1f0c5a1e9c01", "name": "Featured-AlmaLinux9"},
    {"id": "0b7a8c4e-3d21-4f6b-8e0a-6c1d2e3f4a5b", "name": "Featured-Ubuntu22"},
    {"id": "9c9c9c9c-0000-4000-8000-000000000001", "name": "duplicate"},
    {"id": "9c9c9c9c-0000-4000-8000-000000000002", "name": "duplicate"},
]
NETWORKS = [{"id": "3e1b6f1c-2a9d-4b57-8c2e-7d4f5a6b7c8d", "name": "auto_allocated_network"}]
SECURITY_GROUPS = {"default", "exouser-ssh", "condor"}
QUOTA = {"instances": 10, "cores": 20, "ram": 51200}
SERVERS = {}  # id -> server record (with project_id, user_data)
TOKENS = {}  # token -> project id


def now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def fault(status, key, message):
    # The Compute API's fault format: {"<fault name>": {"code", "message"}}.
    return status, {key: {"code": status, "message": message}}


def project_of(token):
    """The token's project, from Keystone (None: 401)."""
    if not token:
        return None
    if token in TOKENS:
        return TOKENS[token]
    req = urllib.request.Request(KEYSTONE + "/v3/auth/tokens")
    req.add_header("X-Auth-Token", token)
    req.add_header("X-Subject-Token", token)
    try:
        with urllib.request.urlopen(req) as r:
            doc = json.load(r)
    except urllib.error.HTTPError:
        return None
    project = doc["token"].get("project", {}).get("id")
    TOKENS[token] = project
    return project


def flavor_embedded(f):
    # Microversion 2.47+: the flavor is embedded, keyed by original_name.
    return {"disk": f["disk"], "ephemeral": 0, "extra_specs": {}, "original_name": f["name"],
            "ram": f["ram"], "swap": 0, "vcpus": f["vcpus"]}


def server_view(s):
    # Servers come up on their own: BUILD when first seen, ACTIVE after.
    if s["status"] == "BUILD":
        if s["seen"]:
            s["status"] = "ACTIVE"
            s["vm_state"] = "active"
            s["power_state"] = 1
            s["launched_at"] = now()
        s["seen"] = True
    href = "%s/compute/v2.1/servers/%s" % (base(), s["id"])
    return {
        "OS-DCF:diskConfig": "MANUAL",
        "OS-EXT-AZ:availability_zone": s["az"],
        "OS-EXT-STS:power_state": s["power_state"],
        "OS-EXT-STS:task_state": "spawning" if s["status"] == "BUILD" else None,
        "OS-EXT-STS:vm_state": s["vm_state"],
        "OS-SRV-USG:launched_at": s.get("launched_at"),
        "OS-SRV-USG:terminated_at": None,
        "accessIPv4": "", "accessIPv6": "",
        "addresses": {} if s["status"] == "BUILD" else {
            "auto_allocated_network": [{"OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01",
                                        "OS-EXT-IPS:type": "fixed", "addr": "10.0.0.%d" % (len(SERVERS) % 250 + 2),
                                        "version": 4}]},
        "config_drive": "",
        "created": s["created"],
        "description": None,
        "flavor": flavor_embedded(s["flavor"]),
        "hostId": "", "host_status": "",
        "id": s["id"],
        "image": {"id": s["image"], "links": [{"href": "%s/compute/images/%s" % (base(), s["image"]), "rel": "bookmark"}]},
        "key_name": s["key_name"],
        "links": [{"href": href, "rel": "self"}, {"href": href, "rel": "bookmark"}],
        "locked": False,
        "metadata": s["metadata"],
        "name": s["name"],
        "os-extended-volumes:volumes_attached": [],
        "progress": 0,
        "security_groups": [{"name": g} for g in s["security_groups"]],
        "status": s["status"],
        "tags": [],
        "tenant_id": s["project_id"],
        "updated": s["created"],
        "user_id": "standin",
    }


def create_server(project, body):
    srv = (body or {}).get("server")
    if not isinstance(srv, dict):
        return fault(400, "badRequest", "Invalid input for field/attribute server.")
    name = srv.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        return fault(400, "badRequest", "Invalid input for field/attribute name.")
    flavor = next((f for f in FLAVORS if f["id"] == str(srv.get("flavorRef"))), None)
    if flavor is None:
        return fault(400, "badRequest", "Flavor %s could not be found." % srv.get("flavorRef"))
    image = srv.get("imageRef")
    if not any(i["id"] == image for i in IMAGES):
        return fault(400, "badRequest", "Image %s could not be found." % image)
    nets = srv.get("networks")
    if nets != "auto" and not (isinstance(nets, list) and all(
            any(n.get("uuid") == x["id"] for x in NETWORKS) for n in nets)):
        return fault(400, "badRequest", "Network %s could not be found." % nets)
    groups = [g.get("name") for g in srv.get("security_groups", [{"name": "default"}])]
    missing = [g for g in groups if g not in SECURITY_GROUPS]
    if missing:
        return fault(400, "badRequest", "Unable to find security_group with name or id '%s'" % missing[0])
    meta = srv.get("metadata", {})
    if not isinstance(meta, dict) or len(meta) > 128 or any(
            not re.fullmatch(r"[a-zA-Z0-9-_:. ]{1,255}", k) or not isinstance(v, str) or len(v) > 255
            for k, v in meta.items()):
        return fault(400, "badRequest", "Invalid input for field/attribute metadata.")
    ud = srv.get("user_data")
    if ud is not None:
        if len(ud) > 65535:
            return fault(400, "badRequest", "User data too large. User data must be no larger than 65535 bytes once base64 encoded.")
        try:
            base64.b64decode(ud, validate=True)
        except Exception:
            return fault(400, "badRequest", "User data needs to be valid base 64.")
    mine = [s for s in SERVERS.values() if s["project_id"] == project]
    if len(mine) + 1 > QUOTA["instances"]:
        return fault(403, "forbidden", "Quota exceeded for instances: Requested 1, but already used %d of %d instances"
                     % (len(mine), QUOTA["instances"]))
    cores = sum(s["flavor"]["vcpus"] for s in mine)
    if cores + flavor["vcpus"] > QUOTA["cores"]:
        return fault(403, "forbidden", "Quota exceeded for cores: Requested %d, but already used %d of %d cores"
                     % (flavor["vcpus"], cores, QUOTA["cores"]))
    sid = str(uuid.uuid4())
    SERVERS[sid] = {
        "id": sid, "name": name, "project_id": project, "flavor": flavor, "image": image,
        "metadata": dict(meta), "user_data": ud, "key_name": srv.get("key_name"),
        "security_groups": groups, "az": srv.get("availability_zone", "nova"),
        "status": "BUILD", "vm_state": "building", "power_state": 0, "seen": False, "created": now(),
    }
    href = "%s/compute/v2.1/servers/%s" % (base(), sid)
    return 202, {"server": {"OS-DCF:diskConfig": "MANUAL", "adminPass": "standin-no-pass", "id": sid,
                            "links": [{"href": href, "rel": "self"}, {"href": href, "rel": "bookmark"}],
                            "security_groups": [{"name": g} for g in groups]}}, {"Location": href}


def list_servers(project, q):
    mine = sorted((s for s in SERVERS.values() if s["project_id"] == project), key=lambda s: (s["created"], s["id"]))
    if "name" in q:
        pat = re.compile(q["name"][0])
        mine = [s for s in mine if pat.search(s["name"])]
    if "marker" in q:
        ids = [s["id"] for s in mine]
        if q["marker"][0] not in ids:
            return fault(400, "badRequest", "marker [%s] not found" % q["marker"][0])
        mine = mine[ids.index(q["marker"][0]) + 1:]
    limit = min(int(q.get("limit", ["1000"])[0]), 1000)
    page = mine[:limit]
    doc = {"servers": [server_view(s) for s in page]}
    # "servers_links": present when the page is full, rel "next" with the
    # last id as the marker.
    if len(page) == limit and page:
        extra = "".join("&%s=%s" % (k, v[0]) for k, v in q.items() if k not in ("limit", "marker"))
        doc["servers_links"] = [{"href": "%s/compute/v2.1/servers/detail?limit=%d%s&marker=%s"
                                 % (base(), limit, extra, page[-1]["id"]), "rel": "next"}]
    return 200, doc


def limits(project):
    mine = [s for s in SERVERS.values() if s["project_id"] == project]
    return 200, {"limits": {"absolute": {
        "maxImageMeta": 128, "maxPersonality": 5, "maxPersonalitySize": 10240,
        "maxSecurityGroupRules": 20, "maxSecurityGroups": 10, "maxServerMeta": 128,
        "maxTotalCores": QUOTA["cores"], "maxTotalFloatingIps": 10,
        "maxTotalInstances": QUOTA["instances"], "maxTotalKeypairs": 100,
        "maxTotalRAMSize": QUOTA["ram"], "maxServerGroups": 10, "maxServerGroupMembers": 10,
        "totalCoresUsed": sum(s["flavor"]["vcpus"] for s in mine), "totalFloatingIpsUsed": 0,
        "totalInstancesUsed": len(mine), "totalRAMUsed": sum(s["flavor"]["ram"] for s in mine),
        "totalSecurityGroupsUsed": 1, "totalServerGroupsUsed": 0}, "rate": []}}


def compute_version():
    return {"version": {"id": "v2.1", "status": "CURRENT", "version": "%d.%d" % MICRO_MAX,
                        "min_version": "%d.%d" % MICRO_MIN, "updated": "2013-07-23T11:33:21Z",
                        "links": [{"href": base() + "/compute/v2.1/", "rel": "self"},
                                  {"href": "http://docs.openstack.org/", "rel": "describedby", "type": "text/html"}],
                        "media-types": [{"base": "application/json",
                                         "type": "application/vnd.openstack.compute+json;version=2.1"}]}}


def parse_micro(headers):
    v = headers.get("X-OpenStack-Nova-API-Version") or ""
    m = re.match(r"(?:compute\s+)?(\d+)\.(\d+)$", (headers.get("OpenStack-API-Version") or v).strip())
    return (int(m.group(1)), int(m.group(2))) if m else MICRO_MIN


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, doc=None, headers=None, micro=None):
        body = b"" if doc is None else json.dumps(doc).encode()
        self.send_response(status)
        if doc is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-openstack-request-id", "req-" + str(uuid.uuid4()))
        if micro:
            ver = "%d.%d" % micro
            self.send_header("OpenStack-API-Version", "compute " + ver)
            self.send_header("X-OpenStack-Nova-API-Version", ver)
            self.send_header("Vary", "OpenStack-API-Version, X-OpenStack-Nova-API-Version")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        return json.loads(raw) if raw else None

    def route(self, method):
        LOCAL.base = "http://" + (self.headers.get("Host") or "127.0.0.1:%d" % PORT)
        u = urlparse(self.path)
        path, q = u.path.rstrip("/"), parse_qs(u.query)
        body = self.body() if method in ("POST", "PUT") else None
        with LOCK:
            if path == "/_standin/quota" and method == "POST":
                QUOTA.update(body)
                return self.reply(200, QUOTA)
            if path == "/_standin/servers":
                return self.reply(200, {"servers": list(SERVERS.values())},)
            # Version documents need no token (as in Nova, Glance, Neutron).
            if path in ("/compute", "/compute/v2.1") and method == "GET":
                return self.reply(200, compute_version())
            if path == "/image" and method == "GET":
                return self.reply(300, {"versions": [{"id": "v2.16", "status": "CURRENT",
                                                      "links": [{"href": base() + "/image/v2/", "rel": "self"}]}]})
            if path == "/network" and method == "GET":
                return self.reply(200, {"versions": [{"id": "v2.0", "status": "CURRENT",
                                                      "links": [{"href": base() + "/network/v2.0/", "rel": "self"}]}]})
            project = project_of(self.headers.get("X-Auth-Token"))
            if project is None:
                # keystonemiddleware's answer to a missing or bad token.
                return self.reply(401, {"error": {"code": 401, "title": "Unauthorized",
                                                  "message": "The request you have made requires authentication."}},
                                  {"WWW-Authenticate": "Keystone uri=\"%s\"" % KEYSTONE})
            if path.startswith("/image/v2/images") and method == "GET":
                found = [dict(i, status="active", visibility="public") for i in IMAGES
                         if "name" not in q or i["name"] == q["name"][0]]
                return self.reply(200, {"images": found, "first": "/v2/images", "schema": "/v2/schemas/images"})
            if path.startswith("/network/v2.0/networks") and method == "GET":
                found = [dict(n, status="ACTIVE", admin_state_up=True, shared=False, tenant_id=project,
                              project_id=project, subnets=[]) for n in NETWORKS
                         if "name" not in q or n["name"] == q["name"][0]]
                return self.reply(200, {"networks": found})
            if not path.startswith("/compute/v2.1"):
                return self.reply(404, {"itemNotFound": {"code": 404, "message": "Not found"}})
            micro = parse_micro(self.headers)
            if not (MICRO_MIN <= micro <= MICRO_MAX):
                return self.reply(406, *fault(406, "computeFault", "Version %d.%d is not supported by the API. Minimum is %d.%d and maximum is %d.%d."
                                              % (micro + MICRO_MIN + MICRO_MAX))[1:], micro=None)
            rest = path[len("/compute/v2.1"):]
            if rest == "/servers" and method == "POST":
                r = create_server(project, body)
            elif rest in ("/servers/detail",) and method == "GET":
                r = list_servers(project, q)
            elif rest == "/flavors" and method == "GET":
                r = 200, {"flavors": [{"id": f["id"], "name": f["name"], "description": None,
                                       "links": [{"href": "%s/compute/v2.1/flavors/%s" % (base(), f["id"]), "rel": "self"}]}
                                      for f in FLAVORS]}
            elif rest == "/limits" and method == "GET":
                r = limits(project)
            elif rest.startswith("/servers/") and method == "DELETE":
                sid = rest[len("/servers/"):]
                s = SERVERS.get(sid)
                if s is None or s["project_id"] != project:
                    r = fault(404, "itemNotFound", "Instance %s could not be found." % sid)
                else:
                    del SERVERS[sid]
                    r = (204, None)
            else:
                r = fault(404, "itemNotFound", "The resource could not be found.")
            status, doc = r[0], r[1]
            headers = r[2] if len(r) > 2 else None
            return self.reply(status, doc, headers, micro=micro)

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_DELETE(self):
        self.route("DELETE")


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    print("nova stand-in listening on %s" % base(), flush=True)
    server.serve_forever()
