#!/usr/bin/env python3
"""A stand-in for the two calls each that the real Nova of tests/openstack/
stack.py (and cloudburst) make to Glance and Neutron, which are not
installed: Image API v2 "List images" and "Show image" (one public, active
qcow2 image, `cirros-pilot`), and "Show image schema"; Networking API v2.0 "List networks"
(one network, `pilot-net`), "List ports" (none: the servers are booted
with `networks: none`) and "List extensions" (none). Shapes follow the
official API references. Written here for the tests; not OpenStack code.

Usage: glance_neutron.py PORT
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

PORT = int(sys.argv[1])
BASE = "http://127.0.0.1:%d" % PORT
IMAGE = {
    "id": "5a0bbd1e-2c5e-4cb4-9b0c-3a1e5e4b7a10",
    "name": "cirros-pilot",
    "status": "active",
    "visibility": "public",
    "protected": False,
    "os_hidden": False,
    "disk_format": "qcow2",
    "container_format": "bare",
    "size": 21430272,
    "virtual_size": 117440512,
    "min_disk": 0,
    "min_ram": 0,
    "checksum": "c36b2c1c0a2f4a6c1f0d0e5c4c5e7e0b",
    "os_hash_algo": "sha512",
    "os_hash_value": "e4" * 64,
    "owner": "admin",
    "tags": [],
    "created_at": "2026-11-01T00:00:00Z",
    "updated_at": "2026-11-01T00:00:00Z",
    "file": "/v2/images/5a0bbd1e-2c5e-4cb4-9b0c-3a1e5e4b7a10/file",
    "self": "/v2/images/5a0bbd1e-2c5e-4cb4-9b0c-3a1e5e4b7a10",
    "schema": "/v2/schemas/image",
}
NETWORK = {
    "id": "b1f3a3c2-3d1e-4f57-8a4e-8a1f0f3c9d21",
    "name": "pilot-net",
    "status": "ACTIVE",
    "admin_state_up": True,
    "shared": True,
    "subnets": [],
    "tenant_id": "admin",
    "project_id": "admin",
    "mtu": 1450,
    "router:external": False,
}



def image_schema():
    """Image v2 "Show image schema": glanceclient reads it before it
    builds an image (types of our record's fields; the rest free)."""
    def kind(v):
        if isinstance(v, bool):
            return {"type": "boolean"}
        if isinstance(v, int):
            return {"type": ["null", "integer"]}
        if isinstance(v, list):
            return {"type": "array", "items": {"type": "string"}}
        return {"type": ["null", "string"]}
    return {"name": "image", "properties": {k: kind(v) for k, v in IMAGE.items()},
            "additionalProperties": {"type": "string"},
            "links": [{"href": "{self}", "rel": "self"}, {"href": "{file}", "rel": "enclosure"},
                      {"href": "{schema}", "rel": "describedby"}]}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("%s\n" % (fmt % args))
        sys.stderr.flush()

    def reply(self, status, doc):
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urlparse(self.path)
        path, q = url.path.rstrip("/"), parse_qs(url.query)
        if path == "/image":
            return self.reply(300, {"versions": [{"id": "v2.16", "status": "CURRENT",
                                                  "links": [{"rel": "self", "href": BASE + "/image/v2/"}]}]})
        if path == "/image/v2/images":
            found = [IMAGE] if q.get("name", [IMAGE["name"]])[0] == IMAGE["name"] else []
            return self.reply(200, {"images": found, "first": "/v2/images", "schema": "/v2/schemas/images"})
        if path == "/image/v2/schemas/image":
            return self.reply(200, image_schema())
        if path == "/image/v2/images/" + IMAGE["id"]:
            return self.reply(200, IMAGE)
        if path.startswith("/image/v2/images/"):
            return self.reply(404, {"message": "No image found with ID %s" % path.rsplit("/", 1)[1],
                                    "code": "404 Not Found", "title": "Not Found"})
        if path == "/network":
            return self.reply(200, {"versions": [{"id": "v2.0", "status": "CURRENT",
                                                  "links": [{"rel": "self", "href": BASE + "/network/v2.0/"}]}]})
        if path == "/network/v2.0/networks":
            found = [NETWORK] if q.get("name", [NETWORK["name"]])[0] == NETWORK["name"] else []
            return self.reply(200, {"networks": found})
        if path == "/network/v2.0/ports":
            return self.reply(200, {"ports": []})
        if path == "/network/v2.0/extensions":
            return self.reply(200, {"extensions": []})
        return self.reply(404, {"NeutronError": {"type": "HTTPNotFound", "message": "not found: " + path,
                                                 "detail": ""}})


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
