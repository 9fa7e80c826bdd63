#!/usr/bin/env python3
"""Registers the stand-in cloud in a real Keystone v3 and makes the project,
user and application credential the OpenStack tests authenticate with.

Usage: keystone_setup.py KEYSTONE_URL ADMIN_PASSWORD CLOUD_URL
Prints one JSON document: project, user, password, application
credential id and secret. Only the Identity API v3 is used (POST
/v3/auth/tokens, /v3/services, /v3/endpoints, /v3/projects, /v3/users,
role assignments, /v3/users/{id}/application_credentials)."""

import json
import sys
import urllib.request

ks, admin_pw, cloud = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3].rstrip("/")


def call(method, path, body=None, token=None, want_token=False):
    req = urllib.request.Request(ks + path, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("X-Auth-Token", token)
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(req, data) as r:
        text = r.read()
        doc = json.loads(text) if text else {}
        return (r.headers["X-Subject-Token"], doc) if want_token else doc


def token(user, pw, project):
    body = {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": pw}}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}
    return call("POST", "/v3/auth/tokens", body, want_token=True)


admin, _ = token("admin", admin_pw, "admin")

for stype, name, path in [("compute", "nova", "/compute/v2.1"),
                          ("image", "glance", "/image"),
                          ("network", "neutron", "/network")]:
    svc = call("POST", "/v3/services", {"service": {"type": stype, "name": name}}, admin)["service"]
    for iface in ("public", "internal"):
        call("POST", "/v3/endpoints", {"endpoint": {
            "service_id": svc["id"], "interface": iface, "region_id": "RegionOne",
            "url": cloud + path}}, admin)

project = call("POST", "/v3/projects", {"project": {"name": "burst", "domain_id": "default"}}, admin)["project"]
user = call("POST", "/v3/users", {"user": {
    "name": "burstuser", "domain_id": "default", "password": "burst-pw-42",
    "default_project_id": project["id"]}}, admin)["user"]
roles = call("GET", "/v3/roles?name=member", None, admin)["roles"]
call("PUT", "/v3/projects/%s/users/%s/roles/%s" % (project["id"], user["id"], roles[0]["id"]), None, admin)

utoken, _ = token("burstuser", "burst-pw-42", "burst")
cred = call("POST", "/v3/users/%s/application_credentials" % user["id"], {
    "application_credential": {"name": "cloudburst", "description": "cloudburst tests"}}, utoken)["application_credential"]

json.dump({"project_id": project["id"], "user_id": user["id"], "username": "burstuser",
           "password": "burst-pw-42", "app_cred_id": cred["id"], "app_cred_secret": cred["secret"]},
          sys.stdout)
