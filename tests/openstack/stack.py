#!/usr/bin/env python3
"""Brings up a real OpenStack control plane on 127.0.0.1 for the tests:
RabbitMQ (Debian's rabbitmq-server, run as this user), PostgreSQL
(Debian's, a private cluster) for Nova's and Placement's databases,
Keystone (sqlite, gunicorn), Placement (gunicorn), Nova API (gunicorn), conductor,
scheduler and one nova-compute with `compute_driver = fake.FakeDriver`
(servers "boot" without a hypervisor), all from PyPI in one venv.

Glance and Neutron are not installed: the image record Nova reads and the
port list it asks for at delete come from tests/openstack/glance_neutron.py,
a stand-in whose shapes follow the Image v2 and Networking v2.0 references.

Usage: stack.py VENV_BIN WORKDIR [NOVA_PORT COMPUTE_URL]
NOVA_PORT is where the Nova API listens and COMPUTE_URL what the catalog
says (a test's fault proxy in front of it); default a free port, itself.
Prints one JSON line when everything answers (urls, credentials, the
flavour and image); then serves until stdin closes (or SIGTERM), and stops
every process it started. A service that does not come up in time ends it
with a message naming the service and the tail of its log (exit 1).
"""

import json
import random
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

VENV, WORK = sys.argv[1], os.path.abspath(sys.argv[2])
NOVA_PORT = int(sys.argv[3]) if len(sys.argv) > 3 else None
COMPUTE_URL = sys.argv[4] if len(sys.argv) > 4 else None
HERE = os.path.dirname(os.path.abspath(__file__))
PROCS = []
PG = None
ADMIN_PW = "stack-admin-pw"
SERVICE_PW = "stack-service-pw"


TAKEN = set()


def free_port():
    """A port free now, below the kernel's ephemeral range: a port the
    kernel handed out for bind(0) could be handed to another test's
    listener or connection before our service binds it (rabbitmq then
    dies with eaddrinuse), but ports below the range are only ever given
    to whoever names them."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low = int(f.read().split()[0])
    rng = random.Random(os.getpid() ^ time.time_ns())
    while True:
        port = rng.randrange(max(1024, low - 12000), low)
        if port in TAKEN:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        TAKEN.add(port)
        return port


def fail(service, message):
    log = os.path.join(WORK, service + ".log")
    tail = ""
    if os.path.exists(log):
        with open(log, errors="replace") as f:
            tail = "".join(f.readlines()[-25:])
    sys.stderr.write("openstack stack: %s %s\n--- %s ---\n%s\n" % (service, message, log, tail))
    stop()
    sys.exit(1)


def die_with_parent():
    """In the child: SIGKILL when stack.py dies, however it dies."""
    import ctypes
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def start(service, argv, env=None):
    log = open(os.path.join(WORK, service + ".log"), "ab")
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                         env=dict(os.environ, **(env or {})), start_new_session=True,
                         preexec_fn=die_with_parent)
    PROCS.append((service, p))
    return p


EPMD = []


def stop(*_):
    for _, p in reversed(PROCS):
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for _, p in PROCS:
        p.wait()
    # Erlang's port mapper daemonizes out of the broker's session; ours
    # has a port of its own, so stopping it touches no other broker.
    for port in EPMD:
        subprocess.run(["epmd", "-port", str(port), "-kill"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, env=dict(os.environ, ERL_EPMD_PORT=str(port)))


def run(service, argv, env=None):
    with open(os.path.join(WORK, service + ".log"), "ab") as log:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                           env=dict(os.environ, **(env or {})))
    if r.returncode != 0:
        fail(service, "failed: %s exited %d" % (" ".join(argv), r.returncode))


def wait_port(service, port, deadline):
    end = time.time() + deadline
    while time.time() < end:
        for name, p in PROCS:
            if p.poll() is not None:
                fail(name, "exited (%d) while %s was starting" % (p.returncode, service))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    fail(service, "did not listen on 127.0.0.1:%d within %d s" % (port, deadline))


def http(method, url, body=None, token=None, headers=None):
    req = urllib.request.Request(url, method=method)
    req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    if token:
        req.add_header("X-Auth-Token", token)
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(req, data, timeout=60) as r:
        text = r.read()
        return r.headers, (json.loads(text) if text else {})


def write(name, text):
    path = os.path.join(WORK, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    signal.signal(signal.SIGTERM, lambda *_: (stop(), sys.exit(0)))
    bin_ = lambda n: os.path.join(VENV, n)
    if NOVA_PORT:
        TAKEN.add(NOVA_PORT)
    ports = {k: free_port() for k in ("rabbit", "rabbit_dist", "epmd", "postgres", "keystone",
                                      "placement", "nova", "stand_in")}
    if NOVA_PORT:
        ports["nova"] = NOVA_PORT
    ks = "http://127.0.0.1:%d" % ports["keystone"]
    t0 = time.time()
    timings = {}

    # --- RabbitMQ, as this user, everything under WORK.
    rabbit = os.path.join(WORK, "rabbit")
    for d in ("mnesia", "log"):
        os.makedirs(os.path.join(rabbit, d))
    write("rabbit/enabled_plugins", "[].\n")
    write("rabbit/rabbitmq.conf", "loopback_users = none\n")
    renv = {
        "RABBITMQ_NODENAME": "cb%d@localhost" % ports["rabbit"],
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(ports["rabbit"]),
        "RABBITMQ_DIST_PORT": str(ports["rabbit_dist"]),
        "RABBITMQ_MNESIA_BASE": rabbit + "/mnesia",
        "RABBITMQ_LOG_BASE": rabbit + "/log",
        "RABBITMQ_PID_FILE": rabbit + "/pid",
        "RABBITMQ_ENABLED_PLUGINS_FILE": rabbit + "/enabled_plugins",
        "RABBITMQ_CONFIG_FILE": rabbit + "/rabbitmq",
        "RABBITMQ_FEATURE_FLAGS_FILE": rabbit + "/feature_flags",
        "HOME": rabbit,
        "ERL_EPMD_ADDRESS": "127.0.0.1",
        "ERL_EPMD_PORT": str(ports["epmd"]),
    }
    EPMD.append(ports["epmd"])
    server = "/usr/lib/rabbitmq/bin/rabbitmq-server"
    if not os.path.exists(server):
        fail("rabbitmq", "is not installed (%s; apt-get install rabbitmq-server)" % server)
    start("rabbitmq", [server], renv)
    transport = "rabbit://guest:guest@127.0.0.1:%d/" % ports["rabbit"]

    # --- PostgreSQL for Nova's and Placement's databases (sqlite cannot
    # take their concurrent writers: builds fail with "database is locked").
    global PG
    pg_bin = os.path.join("/usr/lib/postgresql", sorted(os.listdir("/usr/lib/postgresql"))[-1], "bin")
    pgdir = os.path.join(WORK, "postgres")
    os.makedirs(os.path.join(pgdir, "sock"))
    as_pg = []
    if os.getuid() == 0:
        # initdb refuses root: the cluster belongs to Debian's postgres user.
        import pwd
        pw = pwd.getpwnam("postgres")
        for root, dirs, _ in os.walk(pgdir):
            os.chown(root, pw.pw_uid, pw.pw_gid)
        os.chmod(WORK, 0o755)
        as_pg = ["runuser", "-u", "postgres", "--"]
    run("postgres", as_pg + [os.path.join(pg_bin, "initdb"), "-D", os.path.join(pgdir, "data"),
                             "-A", "trust", "-U", "postgres", "--no-sync"])
    start("postgres", as_pg + [os.path.join(pg_bin, "postgres"), "-D", os.path.join(pgdir, "data"),
                               "-k", os.path.join(pgdir, "sock"), "-h", "127.0.0.1",
                               "-p", str(ports["postgres"]), "-F", "-c", "max_connections=300"])
    PG = "postgresql+psycopg2://postgres@127.0.0.1:%d/" % ports["postgres"]

    # --- Keystone.
    ksdir = os.path.join(WORK, "keystone")
    for d in ("fernet", "cred"):
        os.makedirs(os.path.join(ksdir, d))
    ksconf = write("keystone/keystone.conf", (
        "[DEFAULT]\nuse_stderr = true\n[database]\nconnection = sqlite:///{d}/keystone.db\n"
        "[token]\nprovider = fernet\n[fernet_tokens]\nkey_repository = {d}/fernet\n"
        "[fernet_receipts]\nkey_repository = {d}/fernet\n[credential]\nkey_repository = {d}/cred\n"
    ).format(d=ksdir))
    write("keystone/ks_wsgi.py", "import sys\nsys.argv = sys.argv[:1]\n"
          "from keystone.server.wsgi import initialize_public_application\n"
          "application = initialize_public_application()\n")
    kenv = {"OS_KEYSTONE_CONFIG_FILES": ksconf}
    km = [bin_("keystone-manage"), "--config-file", ksconf]
    uid, gid = str(os.getuid()), str(os.getgid())
    run("keystone", km + ["db_sync"], kenv)
    run("keystone", km + ["fernet_setup", "--keystone-user", uid, "--keystone-group", gid], kenv)
    run("keystone", km + ["credential_setup", "--keystone-user", uid, "--keystone-group", gid], kenv)
    run("keystone", km + ["bootstrap", "--bootstrap-password", ADMIN_PW,
                          "--bootstrap-region-id", "RegionOne",
                          "--bootstrap-public-url", ks + "/v3",
                          "--bootstrap-internal-url", ks + "/v3"], kenv)
    # One worker: Keystone's database is sqlite, and two processes writing
    # it can lock each other out (a 500 to a Nova service at start-up was
    # seen once with two).
    start("keystone", [bin_("gunicorn"), "--chdir", ksdir, "-w", "1", "-b",
                       "127.0.0.1:%d" % ports["keystone"], "ks_wsgi:application"], kenv)

    # --- The Glance/Neutron stand-in (image record, port list).
    start("glance_neutron", [sys.executable, os.path.join(HERE, "glance_neutron.py"),
                             str(ports["stand_in"])])
    wait_port("keystone", ports["keystone"], 60)
    timings["keystone"] = round(time.time() - t0, 1)

    # --- Catalog, service users, the tenant.
    def token(user, pw, project):
        h, _ = http("POST", ks + "/v3/auth/tokens", {"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"id": "default"}, "password": pw}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}}}})
        return h["X-Subject-Token"]

    admin = token("admin", ADMIN_PW, "admin")
    stand_in = "http://127.0.0.1:%d" % ports["stand_in"]
    for stype, name, url in [("placement", "placement", "http://127.0.0.1:%d" % ports["placement"]),
                             ("compute", "nova", COMPUTE_URL or "http://127.0.0.1:%d/v2.1" % ports["nova"]),
                             ("image", "glance", stand_in + "/image"),
                             ("network", "neutron", stand_in + "/network")]:
        _, svc = http("POST", ks + "/v3/services", {"service": {"type": stype, "name": name}}, admin)
        for iface in ("public", "internal"):
            http("POST", ks + "/v3/endpoints", {"endpoint": {
                "service_id": svc["service"]["id"], "interface": iface,
                "region_id": "RegionOne", "url": url}}, admin)
    _, roles = http("GET", ks + "/v3/roles", None, admin)
    role = {r["name"]: r["id"] for r in roles["roles"]}
    _, service = http("POST", ks + "/v3/projects", {"project": {"name": "service", "domain_id": "default"}}, admin)
    for user in ("nova", "placement"):
        _, u = http("POST", ks + "/v3/users", {"user": {"name": user, "domain_id": "default",
                                                        "password": SERVICE_PW}}, admin)
        for r in ("admin", "service"):
            if r in role:
                http("PUT", ks + "/v3/projects/%s/users/%s/roles/%s" % (
                    service["project"]["id"], u["user"]["id"], role[r]), None, admin)
    _, project = http("POST", ks + "/v3/projects", {"project": {"name": "burst", "domain_id": "default"}}, admin)
    _, user = http("POST", ks + "/v3/users", {"user": {
        "name": "burstuser", "domain_id": "default", "password": "burst-pw-42",
        "default_project_id": project["project"]["id"]}}, admin)
    http("PUT", ks + "/v3/projects/%s/users/%s/roles/%s" % (
        project["project"]["id"], user["user"]["id"], role["member"]), None, admin)
    utoken = token("burstuser", "burst-pw-42", "burst")
    _, cred = http("POST", ks + "/v3/users/%s/application_credentials" % user["user"]["id"], {
        "application_credential": {"name": "cloudburst", "description": "cloudburst tests"}}, utoken)

    authtoken = (
        "[keystone_authtoken]\nwww_authenticate_uri = {ks}\nauth_url = {ks}\nauth_type = password\n"
        "project_domain_name = Default\nuser_domain_name = Default\nproject_name = service\n"
        "username = {user}\npassword = {pw}\n")

    wait_port("postgres", ports["postgres"], 60)
    for db in ("nova_api", "nova_cell0", "nova_cell1", "placement"):
        run("postgres", ["psql", "-h", "127.0.0.1", "-p", str(ports["postgres"]), "-U", "postgres",
                         "-q", "-c", "CREATE DATABASE %s" % db])

    # --- Placement.
    os.makedirs(os.path.join(WORK, "placement"))
    write("placement/placement.conf", (
        "[DEFAULT]\nuse_stderr = true\n[placement_database]\nconnection = {db}placement\n"
        "[api]\nauth_strategy = keystone\n" + authtoken).format(
            db=PG, ks=ks, user="placement", pw=SERVICE_PW))
    penv = {"OS_PLACEMENT_CONFIG_DIR": os.path.join(WORK, "placement")}
    run("placement", [bin_("placement-manage"), "--config-file",
                      os.path.join(WORK, "placement/placement.conf"), "db", "sync"], penv)
    start("placement", [bin_("gunicorn"), "-w", "1", "-b", "127.0.0.1:%d" % ports["placement"],
                        "placement.wsgi.api:application"], penv)

    # --- Nova.
    ndir = os.path.join(WORK, "nova")
    os.makedirs(os.path.join(ndir, "state"))
    nconf = write("nova/nova.conf", (
        "[DEFAULT]\nuse_stderr = true\ntransport_url = {transport}\ncompute_driver = fake.FakeDriver\n"
        "state_path = {n}/state\nmy_ip = 127.0.0.1\nhost = cloudburst-compute\n"

        "[api]\nauth_strategy = keystone\n"
        "[api_database]\nconnection = {db}nova_api\n"
        "[database]\nconnection = {db}nova_cell1\n"
        "[oslo_concurrency]\nlock_path = {n}/locks\n"
        "[scheduler]\ndiscover_hosts_in_cells_interval = 2\nworkers = 1\n[conductor]\nworkers = 1\n"
        "[placement]\nregion_name = RegionOne\nauth_type = password\nauth_url = {ks}\n"
        "project_domain_name = Default\nuser_domain_name = Default\nproject_name = service\n"
        "username = nova\npassword = {pw}\n"
        "[glance]\nendpoint_override = {stand_in}/image\n"
        "[neutron]\nendpoint_override = {stand_in}/network\nauth_type = password\nauth_url = {ks}\n"
        "project_domain_name = Default\nuser_domain_name = Default\nproject_name = service\n"
        "username = nova\npassword = {pw}\n"
        "[wsgi]\napi_paste_config = {n}/api-paste.ini\n"
        "[oslo_messaging_notifications]\ndriver = noop\n" + authtoken).format(
            transport=transport, n=ndir, ks=ks, pw=SERVICE_PW, user="nova", stand_in=stand_in, db=PG))
    # pip puts Nova's paste pipeline under the venv's etc/.
    shutil.copy(os.path.join(os.path.dirname(VENV), "etc", "nova", "api-paste.ini"), ndir)
    # The API reads its paste pipeline from the first file.
    nenv = {"OS_NOVA_CONFIG_FILES": "api-paste.ini;nova.conf", "OS_NOVA_CONFIG_DIR": ndir}
    nm = [bin_("nova-manage"), "--config-file", nconf]
    wait_port("rabbitmq", ports["rabbit"], 90)
    timings["rabbitmq"] = round(time.time() - t0, 1)
    run("nova-manage", nm + ["api_db", "sync"], nenv)
    run("nova-manage", nm + ["cell_v2", "map_cell0", "--database_connection",
                             PG + "nova_cell0"], nenv)
    run("nova-manage", nm + ["cell_v2", "create_cell", "--name", "cell1"], nenv)
    run("nova-manage", nm + ["db", "sync"], nenv)
    # Nova parses sys.argv for its options; gunicorn's would be refused.
    write("nova/nova_wsgi.py", "import sys\nsys.argv = sys.argv[:1]\n"
          "from nova.wsgi.osapi_compute import application  # noqa\n")
    start("nova-api", [bin_("gunicorn"), "--chdir", ndir, "-w", "1", "-b",
                       "127.0.0.1:%d" % ports["nova"], "nova_wsgi:application"], nenv)
    for svc in ("nova-conductor", "nova-scheduler", "nova-compute"):
        start(svc, [bin_(svc), "--config-file", nconf], nenv)
    wait_port("placement", ports["placement"], 60)
    wait_port("nova-api", ports["nova"], 120)
    timings["nova-api"] = round(time.time() - t0, 1)

    # The compute service registers itself (and its resource provider in
    # Placement); the scheduler maps it into cell1.
    nova = "http://127.0.0.1:%d/v2.1" % ports["nova"]
    v = {"OpenStack-API-Version": "compute 2.47"}
    end = time.time() + 120
    while True:
        try:
            _, hv = http("GET", nova + "/os-hypervisors", None, admin, v)
            if hv.get("hypervisors"):
                break
        except (urllib.error.URLError, OSError):
            pass
        for name, p in PROCS:
            if p.poll() is not None:
                fail(name, "exited (%d)" % p.returncode)
        if time.time() > end:
            fail("nova-compute", "never registered as a hypervisor within 120 s")
        time.sleep(0.5)
    timings["compute"] = round(time.time() - t0, 1)
    for name, vcpus, ram, disk in (("m1.small", 1, 2048, 20), ("m1.large", 4, 8192, 40)):
        http("POST", nova + "/flavors", {"flavor": {"name": name, "vcpus": vcpus, "ram": ram,
                                                    "disk": disk}}, admin, v)

    print(json.dumps({
        "keystone": ks + "/v3", "nova": nova, "admin_password": ADMIN_PW,
        "project_id": project["project"]["id"], "username": "burstuser", "password": "burst-pw-42",
        "app_cred_id": cred["application_credential"]["id"],
        "app_cred_secret": cred["application_credential"]["secret"],
        "image": "cirros-pilot", "timings": timings,
    }), flush=True)
    try:
        sys.stdin.read()
    finally:
        stop()


if __name__ == "__main__":
    main()
