#!/usr/bin/env python3
"""Runs docker-compose.yml's idbridge services as processes, the way the containers run them.

    compose_smoke.py ROOT IDBRIDGE_BIN ORCID_SIM_BIN SECRETS_DIR COMPOSE_JSON

No Docker engine runs on the build machines, so this is the closest check of the compose
stack's configuration: the containers share orcid-sim's network namespace, so every idbridge
service reaches the others on 127.0.0.1 — exactly what processes on this machine's loopback
do. Each service gets the command, the environment and the env file the rendered compose file
gives its container, the configuration file deploy/compose/idbridge.toml and the key ring the
compose secrets mount, on a read-only root filesystem with a tmpfs on /tmp (a private mount namespace per
process, when run as root), with two differences: PostgreSQL and RabbitMQ are this machine's
(TEST_DATABASE_URL's server, TEST_AMQP_URL; a fresh database and a fresh bus prefix), and no
traces are exported. Then, as a researcher would: create a user at the simulator, sign in at
the portal, connect the iD (the simulator's headless approval), send a hire to the writer API
with the `hr-system` token, and wait until the item is in ORCID with a put code; check each
admin port's /readyz and /metrics and the image's health-check script; stop everything with
SIGTERM (each must exit 0).

Needs the compose ports free on 127.0.0.1 (8080-8083, 8090, 9001-9005). Fails loudly.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import uuid
from pathlib import Path

import requests

SERVICES = ["token-vault", "writer", "reader", "webhook-receiver", "portal"]
# Runs a command with / read-only and a fresh tmpfs on /tmp, in its own mount namespace.
READ_ONLY = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             'mount -o remount,bind,ro / && mount -t tmpfs -o size=64m,mode=1777 tmpfs /tmp && exec "$@"', "read-only"]
PORTAL = "http://127.0.0.1:8080"
SIM = "http://127.0.0.1:8090"
WRITER = "http://127.0.0.1:8082"


def fail(msg: str) -> None:
    raise SystemExit(f"FAILED: compose smoke: {msg}")


def main() -> None:
    root, idbridge, orcid_sim, secrets, rendered = (Path(a).resolve() for a in sys.argv[1:6])
    compose = json.loads(rendered.read_text())
    config = root / "deploy/compose/idbridge.toml"
    logs = rendered.parent / "smoke-logs"   # the run's work directory (<target>/deploy-check)
    logs.mkdir(parents=True, exist_ok=True)

    for port in (8080, 8081, 8082, 8083, 8090, 9001, 9002, 9003, 9004, 9005):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                fail(f"127.0.0.1:{port} is taken; the compose configuration uses it (stop what listens there)")

    db_server = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    amqp = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f")
    try:  # a broker that accepts TCP but not the AMQP handshake fails here, saying so
        import pika

        params = pika.URLParameters(amqp)
        params.socket_timeout = params.stack_timeout = 15
        pika.BlockingConnection(params).close()
    except Exception as e:  # noqa: BLE001 — any failure is the broker's
        fail(f"RabbitMQ at {amqp.split('@')[-1]} (TEST_AMQP_URL) does not complete an AMQP handshake: {type(e).__name__} {e}")
    db_name = "idbridge_compose_smoke_" + uuid.uuid4().hex[:8]
    prefix = "composesmoke" + uuid.uuid4().hex[:8]
    server = urllib.parse.urlsplit(db_server)
    db_url = urllib.parse.urlunsplit(server._replace(path="/" + db_name))
    psql = ["psql", db_server, "-v", "ON_ERROR_STOP=1", "-qc"]
    try:
        subprocess.run(psql + [f"CREATE DATABASE {db_name}"], check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as e:
        fail(f"cannot create a database on {server.hostname}:{server.port} (TEST_DATABASE_URL): {getattr(e, 'stderr', e)}")

    base = {k: v for k, v in os.environ.items() if not k.startswith(("IDBRIDGE__", "OTEL_"))}
    backing = {"IDBRIDGE__DATABASE__URL": db_url, "IDBRIDGE__BUS__AMQP_URL": amqp, "IDBRIDGE__BUS__PREFIX": prefix}
    procs: list[tuple[str, subprocess.Popen]] = []

    # As in the containers: a read-only root filesystem with a tmpfs on /tmp, and a working
    # directory that cannot be written (a private mount namespace per process; root only).
    # A checkout, secrets or binaries under /tmp (a CI runner's clone) would vanish under the
    # tmpfs: then /tmp stays as it is, still read-only.
    read_only = list(READ_ONLY)
    under_tmp = any(Path(p).is_relative_to("/tmp") for p in (root, idbridge, orcid_sim, secrets))
    if under_tmp:
        read_only[6] = read_only[6].replace(" && mount -t tmpfs -o size=64m,mode=1777 tmpfs /tmp", "")
    if subprocess.run(read_only + ["true"], capture_output=True).returncode != 0:
        read_only = []
    print(("  root filesystem read-only, /tmp " + ("read-only too (the checkout is under /tmp)" if under_tmp else "a tmpfs")
           + ", working directory /") if read_only else
          "  NOTE: cannot make the root filesystem read-only here (needs root and unshare): running on a writable one")

    def start(name, argv, env):
        out = open(logs / f"{name}.log", "w")
        procs.append((name, subprocess.Popen(read_only + argv, env=env, cwd="/" if read_only else None,
                                             stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)))

    def check_alive():
        for name, p in procs:
            if p.poll() is not None:
                fail(f"{name} exited with {p.returncode}; its log: {logs / (name + '.log')}")

    def local(argv):
        return [str(config) if a == "/etc/idbridge/idbridge.toml" else a for a in argv]

    stopped_cleanly = False
    try:
        m = subprocess.run(read_only + [str(idbridge)] + local(compose["services"]["migrate"]["command"]),
                           env={**base, **backing}, cwd="/" if read_only else None, capture_output=True, text=True, timeout=120)
        if m.returncode != 0:
            fail(f"idbridge migrate: {m.stdout}{m.stderr}")
        sim = compose["services"]["orcid-sim"]["command"]
        start("orcid-sim", [str(orcid_sim)] + [a.replace("--listen=0.0.0.0:", "--listen=127.0.0.1:") for a in sim], base)
        for name in SERVICES:
            svc = compose["services"][name]
            env = {**base, **{k: v for k, v in (svc.get("environment") or {}).items()
                              if v is not None and not k.startswith("OTEL_EXPORTER")}, **backing}
            if name == "token-vault":
                env["IDBRIDGE__VAULT__KEY_DIR"] = str(secrets / "kek")
            start(name, [str(idbridge)] + local(svc["command"]), env)
            admin = env["IDBRIDGE__ADMIN__LISTEN"].rsplit(":", 1)[1]
            deadline = time.monotonic() + 60
            while True:
                check_alive()
                try:
                    if requests.get(f"http://127.0.0.1:{admin}/readyz", timeout=2).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline:
                    fail(f"{name} not ready on admin port {admin} within 60 s")
                time.sleep(0.3)
        print(f"  every service ready (admin ports {', '.join(compose['services'][s]['environment']['IDBRIDGE__ADMIN__LISTEN'].rsplit(':', 1)[1] for s in SERVICES)})")

        # A researcher connects through the portal and the simulator.
        email = f"smoke-{uuid.uuid4().hex[:8]}@example.org"
        r = requests.post(f"{SIM}/_sim/users", json={"given-names": "Sofia", "family-name": "Garcia", "email": email, "password": "pw"}, timeout=10)
        if r.status_code != 201:
            fail(f"orcid-sim /_sim/users answered {r.status_code}")
        orcid = r.json()["orcid"]
        s = requests.Session()

        def go(method, url, **kw):
            # Browsers send the portal's Secure cookie to http://127.0.0.1; requests does not.
            for c in s.cookies:
                c.secure = False
            return s.request(method, PORTAL + url if url.startswith("/") else url, allow_redirects=False, timeout=20, **kw)

        page = go("GET", "/signin").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        if not csrf:
            fail("the portal's sign-in page has no development sign-in form")
        person = "P-smoke-" + uuid.uuid4().hex[:8]
        r = go("POST", "/signin/dev", data={"csrf": csrf.group(1), "person_id": person, "name": "Sofia Garcia"})
        if r.status_code != 303:
            fail(f"development sign-in answered {r.status_code}")
        r = go("GET", "/connect/orcid")
        authorize = r.headers.get("location", "")
        if not authorize.startswith(f"{SIM}/oauth/authorize?"):
            fail(f"Connect did not redirect to the simulator's authorize page: {r.status_code} {authorize[:80]}")
        r = go("GET", authorize + f"&sim_user={orcid}&sim_decision=authorize")
        callback = r.headers.get("location", "")
        if not callback.startswith(f"{PORTAL}/orcid/callback?code="):
            fail(f"the simulator did not send the researcher back to the portal's callback: {r.status_code}")
        r = go("GET", callback)
        if r.status_code != 303 or "connected" not in r.headers.get("location", ""):
            fail(f"the portal's callback answered {r.status_code} {r.headers.get('location')}")
        print(f"  {orcid} connected through the portal (person {person})")

        # A hire through the writer API, written to ORCID with a put code.
        token = (secrets / "hr-system-token").read_text().strip()
        auth = {"authorization": f"Bearer {token}"}
        event = {"event_id": "hr-smoke-" + uuid.uuid4().hex[:8], "event_type": "hire", "occurred_at": "2026-12-01T08:00:00Z",
                 "person": {"person_id": person, "names": {"given_names": "Sofia", "family_name": "Garcia"}},
                 "position": {"position_id": "POS-1", "department": "Psychoceramics", "role_title": "Professor", "start_date": "2026-12-01"}}
        r = requests.post(f"{WRITER}/api/v1/hr-events", json=event, headers=auth, timeout=20)
        if r.status_code != 202 or r.json().get("accepted") != 1:
            fail(f"the writer API did not accept the hire: {r.status_code} {r.text[:200]}")
        deadline = time.monotonic() + 90
        item = None
        while time.monotonic() < deadline:
            check_alive()
            items = requests.get(f"{WRITER}/api/v1/items", params={"person_id": person}, headers=auth, timeout=10).json().get("items", [])
            item = next((i for i in items if i.get("state") == "in_orcid"), None)
            if item:
                break
            time.sleep(0.5)
        if not item or not item.get("put_code"):
            fail(f"the hire was not written to ORCID within 90 s: {items}")
        record = requests.get(f"{SIM}/_sim/records/{orcid}", timeout=10).text
        if "Psychoceramics" not in record:
            fail("the simulator's record does not hold the employment")
        print(f"  hire written to ORCID: employment put code {item['put_code']}")

        # Metrics, and the image's health check against a real admin server.
        for name, metric in [("token-vault", "idbridge_connections"), ("writer", "idbridge_orcid_requests_total"),
                             ("writer", "idbridge_items"), ("webhook-receiver", "idbridge_build_info")]:
            admin = compose["services"][name]["environment"]["IDBRIDGE__ADMIN__LISTEN"].rsplit(":", 1)[1]
            if metric not in requests.get(f"http://127.0.0.1:{admin}/metrics", timeout=10).text:
                fail(f"{name}'s /metrics has no {metric}")
        for name in SERVICES:
            listen = compose["services"][name]["environment"]["IDBRIDGE__ADMIN__LISTEN"]
            hc = subprocess.run(["bash", str(root / "deploy/docker/healthcheck.sh"), "/readyz"],
                                env={**base, "IDBRIDGE__ADMIN__LISTEN": listen}, capture_output=True, text=True, timeout=10)
            if hc.returncode != 0:
                fail(f"healthcheck.sh /readyz for {name}: {hc.stderr.strip()}")
        print("  /metrics of each admin port, healthcheck.sh /readyz of each service")

        for _, p in reversed(procs):
            p.send_signal(signal.SIGTERM)
        for name, p in reversed(procs):
            try:
                code = p.wait(timeout=45)
            except subprocess.TimeoutExpired:
                fail(f"{name} did not stop within 45 s of SIGTERM")
            if code != 0:
                fail(f"{name} exited {code} after SIGTERM; its log: {logs / (name + '.log')}")
        stopped_cleanly = True
        print("  SIGTERM: every process exited 0")
    finally:
        if not stopped_cleanly:
            for _, p in procs:
                if p.poll() is None:
                    p.kill()
        subprocess.run(psql + [f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"], capture_output=True)
        cleanup_problems = delete_bus_objects(amqp, prefix)
        if cleanup_problems and stopped_cleanly:
            fail("cleaning up the bus prefix " + prefix + " failed: " + "; ".join(cleanup_problems))
    print("ok: compose smoke: the compose configuration runs as processes: connect, hire written with a put code, metrics, clean stop")


def delete_bus_objects(amqp_url: str, prefix: str) -> list[str]:
    """Deletes the queues and exchanges of the run's bus prefix: names from two rabbitmqctl
    calls, deletions one by one over a single AMQP connection (not one Erlang VM per queue).
    Returns what went wrong."""
    import pika

    problems = []
    names = {}
    for kind in ("queues", "exchanges"):
        try:
            listed = subprocess.run(["rabbitmqctl", "-q", f"list_{kind}", "name"], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as e:
            return [f"rabbitmqctl list_{kind}: {e}"]
        if listed.returncode != 0:
            return [f"rabbitmqctl list_{kind}: {listed.stderr.strip()}"]
        names[kind] = [n for n in listed.stdout.split() if n.startswith(prefix)]
    try:
        conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    except Exception as e:  # noqa: BLE001 — any connection failure is reported
        return [f"cannot connect to {amqp_url.split('@')[-1]}: {e}"]
    try:
        channel = conn.channel()
        for kind, delete in (("queues", "queue_delete"), ("exchanges", "exchange_delete")):
            for name in names[kind]:
                try:
                    getattr(channel, delete)(name)
                except pika.exceptions.ChannelClosed as e:
                    problems.append(f"{delete} {name}: {e}")
                    channel = conn.channel()
    finally:
        conn.close()
    left = []
    for kind in ("queues", "exchanges"):
        listed = subprocess.run(["rabbitmqctl", "-q", f"list_{kind}", "name"], capture_output=True, text=True, timeout=60)
        left += [n for n in listed.stdout.split() if n.startswith(prefix)]
    if left:
        problems.append(f"still declared: {', '.join(sorted(left))}")
    else:
        print(f"  cleaned up: {len(names['queues'])} queues and {len(names['exchanges'])} exchanges of {prefix}")
    return problems


if __name__ == "__main__":
    main()
