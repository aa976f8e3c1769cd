#!/usr/bin/env python3
"""Static checks of deploy/ that no off-the-shelf tool does (scripts/check-deploy.sh runs them).

    checks.py metrics      ROOT              dashboard and alerts use only the metrics of the
                                             contract (docs/metrics.md), the dashboard shows
                                             every one, and the code emits every one
    checks.py dashboard    ROOT              the Grafana dashboard and its provisioning
    checks.py otel         ROOT              the collector's pipelines name defined components
    checks.py compose      ROOT RENDERED.json  docker-compose.yml as `docker-compose config` renders it
    checks.py kubernetes   RENDERED.yaml SECRETS_DIR STAGE
                                             a rendered overlay: security context, probes,
                                             resources, autoscaling, policies, and every Secret
                                             key it reads is one make-secrets.sh writes
    checks.py migrate      MIGRATE.yaml SERVICES.yaml SECRETS_DIR STAGE
                                             overlays/STAGE/migrate: one Job, named after the
                                             release the services run, needing no ConfigMap
    checks.py migrate-run  BIN MIGRATE.yaml DATABASE_URL
                                             the Job's command and env run by the real binary
                                             on an empty database: every migration applies,
                                             twice (idempotent)
    checks.py config-compose ROOT BIN SECRETS_DIR
    checks.py config-kubernetes BIN RENDERED.yaml SECRETS_DIR STAGE [SERVICE=KEY[,KEY...]...]
                                             the real binary loads the shipped configuration of
                                             each service up to its database connection (or,
                                             for SERVICE=KEYS, refuses it naming each KEY)
    checks.py dockerfile   ROOT              what hadolint does not check

Each prints what it checked and exits 1 listing every problem.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

PROBLEMS: list[str] = []


def problem(msg: str) -> None:
    PROBLEMS.append(msg)


def finish(what: str) -> None:
    if PROBLEMS:
        print(f"FAILED: {what}", file=sys.stderr)
        for p in PROBLEMS:
            print(f"  - {p}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {what}")


# ---------------------------------------------------------------------------------------------
# Metrics

CONTRACT_ROW = re.compile(r"^\|\s*`(idbridge_[a-z0-9_]+)`\s*\|\s*(counter|gauge|histogram)\b")
# Prometheus' own series the rules may use besides the contract's.
PROMETHEUS_SERIES = {"up"}
PROMQL_KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "offset", "bool", "inf", "nan",
}


CONTRACT = "docs/metrics.md"


def contract(root: Path) -> dict[str, str]:
    """Metric name → type, from the table in docs/metrics.md (the contract between the code,
    the dashboard and the alerts)."""
    metrics = {}
    for line in (root / CONTRACT).read_text().splitlines():
        m = CONTRACT_ROW.match(line)
        if m:
            metrics[m.group(1)] = m.group(2)
    if len(metrics) < 10:
        problem(f"{CONTRACT}: found only {len(metrics)} rows in the metrics table")
    return metrics


def series_names(metrics: dict[str, str]) -> dict[str, str]:
    """Series name as scraped → contract metric."""
    out = {}
    for name, kind in metrics.items():
        if kind == "histogram":
            for suffix in ("_bucket", "_sum", "_count"):
                out[name + suffix] = name
        else:
            out[name] = name
    return out


def metric_names_in(expr: str) -> set[str]:
    """The series names a PromQL expression selects (a small tokenizer: strings, label
    matchers, ranges and groupings removed; what remains and is not a function call, a
    keyword or a number is a metric name)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", e):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in PROMQL_KEYWORDS:
            continue
        if re.fullmatch(r"\d+[smhdwy]", word):
            continue
        names.add(word)
    return names


def dashboard_exprs(dash: dict) -> list[tuple[str, str]]:
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                if "expr" in t:
                    out.append((p.get("title", "?"), t["expr"]))
            walk(p.get("panels", []))

    walk(dash.get("panels", []))
    for var in dash.get("templating", {}).get("list", []):
        q = var.get("query")
        if isinstance(q, dict):
            q = q.get("query")
        if var.get("type") == "query" and isinstance(q, str):
            m = re.match(r"label_values\((\w+)\s*,", q)
            if m:
                out.append((f"variable {var['name']}", m.group(1)))
    return out


def check_metrics(root: Path) -> None:
    metrics = contract(root)
    series = series_names(metrics)
    dash = json.loads((root / "deploy/grafana/idbridge-dashboard.json").read_text())
    used_by_dashboard = set()
    for title, expr in dashboard_exprs(dash):
        for name in metric_names_in(expr):
            if name in series:
                used_by_dashboard.add(series[name])
            else:
                problem(f"dashboard panel {title!r} uses {name}, which is not in the metrics table of {CONTRACT}")
    for name in sorted(set(metrics) - used_by_dashboard):
        problem(f"no dashboard panel shows {name}")

    rules = yaml.safe_load((root / "deploy/prometheus/alerts.yml").read_text())
    count = 0
    for group in rules["groups"]:
        for rule in group["rules"]:
            count += 1
            for name in metric_names_in(rule["expr"]):
                if name not in series and name not in PROMETHEUS_SERIES:
                    problem(f"alert {rule.get('alert')} uses {name}, which is not in the metrics table of {CONTRACT}")
            if rule.get("labels", {}).get("severity") not in {"critical", "warning", "info"}:
                problem(f"alert {rule.get('alert')}: severity must be critical, warning or info")
            for key in ("summary", "description"):
                if not rule.get("annotations", {}).get(key):
                    problem(f"alert {rule.get('alert')}: no {key} annotation")
    required = {
        "parked messages": "idbridge_bus_messages_total",
        "401 spikes": "idbridge_orcid_requests_total",
        "rate-limit saturation": "idbridge_ratelimit_wait_seconds",
        "a consumer gone": "idbridge_queue_consumers",
        "outbox lag": "idbridge_outbox_oldest_age_seconds",
    }
    alert_metrics = {series.get(n, n) for g in rules["groups"] for r in g["rules"] for n in metric_names_in(r["expr"])}
    for what, metric in required.items():
        if metric not in alert_metrics:
            problem(f"no alert on {what} ({metric})")

    # The code must emit what the dashboard and the alerts show.
    sources = []
    for top in ("crates", "services"):
        for path in (root / top).rglob("*.rs"):
            if "/tests/" in str(path) or "/target/" in str(path):
                continue
            sources.append(path.read_text(errors="replace"))
    text = "\n".join(sources)
    missing = [m for m in metrics if not re.search(rf"\b{m}\b", text)]
    for m in missing:
        problem(f"{m} is in {CONTRACT} but no source file under crates/ or services/ names it")
    finish(f"metrics: {len(metrics)} in the contract, all on the dashboard, {count} alert rules use only them, each emitted by the code")


# ---------------------------------------------------------------------------------------------
# Dashboard


def check_dashboard(root: Path) -> None:
    dash = json.loads((root / "deploy/grafana/idbridge-dashboard.json").read_text())
    for key in ("uid", "title", "panels", "schemaVersion", "templating"):
        if key not in dash:
            problem(f"dashboard: no {key}")
    ids = set()
    boxes = []
    ds_var = None
    for var in dash["templating"]["list"]:
        if var.get("type") == "datasource":
            ds_var = var
    if not ds_var or ds_var.get("query") != "prometheus":
        problem("dashboard: no Prometheus datasource variable")
    variables = {v["name"] for v in dash["templating"]["list"]}
    panels = dash["panels"]
    for p in panels:
        pid = p.get("id")
        if pid in ids:
            problem(f"dashboard: panel id {pid} twice")
        ids.add(pid)
        g = p.get("gridPos", {})
        if not all(k in g for k in ("x", "y", "w", "h")) or g["x"] + g["w"] > 24:
            problem(f"dashboard: panel {p.get('title')!r} has a bad gridPos {g}")
            continue
        for (bx, by, bw, bh, bt) in boxes:
            if g["x"] < bx + bw and bx < g["x"] + g["w"] and g["y"] < by + bh and by < g["y"] + g["h"]:
                problem(f"dashboard: panels {bt!r} and {p.get('title')!r} overlap")
        boxes.append((g["x"], g["y"], g["w"], g["h"], p.get("title")))
        if p["type"] == "row":
            continue
        if not p.get("title") or not p.get("description"):
            problem(f"dashboard: panel {pid} needs a title and a description")
        if p.get("datasource", {}).get("uid") != "${datasource}":
            problem(f"dashboard: panel {p.get('title')!r} does not use the $datasource variable")
        if not p.get("targets"):
            problem(f"dashboard: panel {p.get('title')!r} has no query")
        for t in p.get("targets", []):
            for ref in re.findall(r"\$(\w+)", t.get("expr", "")):
                if ref not in variables and not ref.startswith("__"):
                    problem(f"dashboard: panel {p.get('title')!r} uses ${ref}, which is not a variable")
    # Provisioning: the datasource uid the variable defaults to exists, the provider path is
    # where docker-compose.yml mounts the dashboard.
    ds = yaml.safe_load((root / "deploy/grafana/provisioning/datasources/prometheus.yaml").read_text())
    uids = {d.get("uid") for d in ds.get("datasources", [])}
    if ds_var and ds_var.get("current", {}).get("value") not in uids:
        problem("dashboard: the datasource variable's default is not the provisioned datasource uid")
    prov = yaml.safe_load((root / "deploy/grafana/provisioning/dashboards/idbridge.yaml").read_text())
    paths = [pr.get("options", {}).get("path") for pr in prov.get("providers", [])]
    compose = (root / "docker-compose.yml").read_text()
    for path in paths:
        if f":{path}/idbridge-dashboard.json" not in compose:
            problem(f"grafana provisioning: provider path {path} is not where docker-compose.yml mounts the dashboard")
    finish(f"dashboard: {len([p for p in panels if p['type'] != 'row'])} panels, grid, variables, provisioning")


# ---------------------------------------------------------------------------------------------
# OpenTelemetry collector


def check_otel(root: Path) -> None:
    conf = yaml.safe_load((root / "deploy/otel/collector.yaml").read_text())
    service = conf.get("service", {})
    for ext in service.get("extensions", []):
        if ext not in conf.get("extensions", {}):
            problem(f"otel: extension {ext} is not defined")
    pipelines = service.get("pipelines", {})
    if "traces" not in pipelines:
        problem("otel: no traces pipeline")
    for name, pipe in pipelines.items():
        for kind in ("receivers", "processors", "exporters"):
            for comp in pipe.get(kind, []):
                if comp not in (conf.get(kind) or {}):
                    problem(f"otel: pipeline {name} names {kind[:-1]} {comp}, which is not defined")
        if not pipe.get("receivers") or not pipe.get("exporters"):
            problem(f"otel: pipeline {name} needs receivers and exporters")
    protocols = conf.get("receivers", {}).get("otlp", {}).get("protocols", {})
    if "http" not in protocols:
        problem("otel: the otlp receiver must accept HTTP (the services export OTLP/HTTP)")
    finish("otel collector: pipelines reference defined components")


# ---------------------------------------------------------------------------------------------
# docker-compose.yml

IDBRIDGE_SERVICES = ["token-vault", "writer", "reader", "webhook-receiver", "portal"]
SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Third-party images whose entrypoints write outside volumes: not run read-only.
NOT_READ_ONLY = {"rabbitmq"}
# An exact release: x.y.z (PostgreSQL: x.y), optionally v-prefixed and with a variant suffix.
EXACT_TAG = re.compile(r":v?(\d+\.\d+\.\d+|(?<=postgres:)\d+\.\d+)(-[a-z0-9.-]+)?$")


def check_compose(root: Path, rendered: Path) -> None:
    c = json.loads(rendered.read_text())
    services = c.get("services", {})
    needed = IDBRIDGE_SERVICES + ["migrate", "orcid-sim", "postgres", "rabbitmq", "otel-collector", "prometheus", "grafana"]
    for s in needed:
        if s not in services:
            problem(f"compose: no service {s}")
    admin_ports = {}
    for name, s in services.items():
        image = s.get("image", "")
        if not image.startswith("idbridge:") and "@sha256:" not in image and not EXACT_TAG.search(image):
            problem(f"compose: {name}'s image {image} has no exact version tag (x.y.z; PostgreSQL x.y)")
        if name not in NOT_READ_ONLY and not s.get("read_only"):
            problem(f"compose: {name} is not read_only")
        if s.get("privileged"):
            problem(f"compose: {name} is privileged")
    for name in IDBRIDGE_SERVICES + ["migrate", "orcid-sim"]:
        s = services.get(name, {})
        if s.get("user") != "10001:10001":
            problem(f"compose: {name} does not run as 10001:10001")
        if "ALL" not in (s.get("cap_drop") or []):
            problem(f"compose: {name} does not drop all capabilities")
    for name in IDBRIDGE_SERVICES:
        s = services.get(name, {})
        cmd = s.get("command") or []
        if cmd[:2] != ["serve", name]:
            problem(f"compose: {name} does not run `idbridge serve {name}`")
        if "healthcheck" not in s:
            problem(f"compose: {name} has no healthcheck")
        if s.get("network_mode") != "service:orcid-sim":
            problem(f"compose: {name} is not in orcid-sim's network namespace")
        for var in s.get("environment") or {}:
            if not SHELL_NAME.fullmatch(var):
                problem(f"compose: {name}: environment variable {var} is not a shell variable name (a wrapper shell would drop it)")
        listen = (s.get("environment") or {}).get("IDBRIDGE__ADMIN__LISTEN", "")
        port = listen.rsplit(":", 1)[-1]
        if port in admin_ports.values():
            problem(f"compose: {name} shares its admin port {port}")
        admin_ports[name] = port
        deps = s.get("depends_on", {})
        if deps.get("migrate", {}).get("condition") != "service_completed_successfully":
            problem(f"compose: {name} does not wait for the migrations")
    vault = services.get("token-vault", {})
    targets = sorted(x.get("target", "") for x in vault.get("secrets", []))
    if not any(t.startswith("/run/secrets/idbridge-kek/") for t in targets) or not any(t.endswith("/active") for t in targets):
        problem("compose: token-vault does not get the key ring as secrets under /run/secrets/idbridge-kek")
    toml_text = (root / "deploy/compose/idbridge.toml").read_text()
    if 'key_dir = "/run/secrets/idbridge-kek"' not in toml_text:
        problem("compose: deploy/compose/idbridge.toml's vault.key_dir is not /run/secrets/idbridge-kek")
    # Prometheus scrapes exactly the admin ports the services listen on.
    prom = yaml.safe_load((root / "deploy/prometheus/prometheus.yml").read_text())
    scraped = {}
    for job in prom["scrape_configs"]:
        for sc in job.get("static_configs", []):
            comp = sc.get("labels", {}).get("component")
            for t in sc["targets"]:
                if comp:
                    scraped[comp] = t.rsplit(":", 1)[-1]
    for name, port in admin_ports.items():
        if scraped.get(name) != port:
            problem(f"prometheus.yml: {name} listens on admin port {port} but is scraped on {scraped.get(name)}")
    # The simulator's registered client is the one the services use.
    sim_cmd = " ".join(services.get("orcid-sim", {}).get("command") or [])
    m = re.search(r'client_id = "([^"]+)"', toml_text)
    if not m or f"--client={m.group(1)}:" not in sim_cmd:
        problem("compose: orcid-sim's --client is not [orcid] client_id of deploy/compose/idbridge.toml")
    finish(f"compose: {len(services)} services; read-only, users, capabilities, healthchecks, admin ports = Prometheus targets")


# ---------------------------------------------------------------------------------------------
# Kubernetes


def load_docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def secrets_written(secrets_dir: Path) -> dict[str, set[str]]:
    out = {}
    for f in secrets_dir.glob("*.yaml"):
        for d in load_docs(f):
            if d.get("kind") == "Secret":
                out[d["metadata"]["name"]] = set((d.get("data") or {}).keys()) | set((d.get("stringData") or {}).keys())
    return out


def check_workload(stage: str, w: dict, secrets: dict[str, set[str]], configmaps: set[str]) -> None:
    """A Deployment's or Job's pod: non-root, read-only, no capabilities, resources, a pinned
    image, and only Secret keys make-secrets.sh writes."""
    name = f"{w['kind']} {w['metadata']['name']}"
    pod = w["spec"]["template"]["spec"]
    psc = pod.get("securityContext", {})
    if not psc.get("runAsNonRoot") or not isinstance(psc.get("runAsUser"), int) or psc.get("runAsUser") == 0:
        problem(f"{stage}: {name}: the pod must run as a numeric non-root user")
    if pod.get("automountServiceAccountToken") is not False:
        problem(f"{stage}: {name}: mounts a service account token")
    for ct in pod["containers"]:
        sc = ct.get("securityContext", {})
        seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
        if sc.get("readOnlyRootFilesystem") is not True:
            problem(f"{stage}: {name}: root filesystem not read-only")
        if sc.get("allowPrivilegeEscalation") is not False:
            problem(f"{stage}: {name}: privilege escalation allowed")
        if (sc.get("capabilities") or {}).get("drop") != ["ALL"]:
            problem(f"{stage}: {name}: capabilities not dropped (ALL)")
        if seccomp != "RuntimeDefault":
            problem(f"{stage}: {name}: seccomp profile is not RuntimeDefault")
        res = ct.get("resources", {})
        for k in ("requests", "limits"):
            if not {"cpu", "memory"} <= set(res.get(k, {})):
                problem(f"{stage}: {name}: resources.{k} needs cpu and memory")
        image = ct.get("image", "")
        if ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest"):
            problem(f"{stage}: {name}: image {image!r} has no pinned tag")
        for env in ct.get("env", []):
            if not SHELL_NAME.fullmatch(env["name"]):
                problem(f"{stage}: {name}: env {env['name']} is not a shell variable name (a wrapper shell would drop it)")
            ref = (env.get("valueFrom") or {}).get("secretKeyRef")
            if ref and not ref.get("optional"):
                if ref["name"] not in secrets:
                    problem(f"{stage}: {name}: env {env['name']} reads Secret {ref['name']}, which make-secrets.sh does not write")
                elif ref["key"] not in secrets[ref["name"]]:
                    problem(f"{stage}: {name}: env {env['name']} reads key {ref['key']} of Secret {ref['name']}, which make-secrets.sh does not write")
        for ef in ct.get("envFrom", []):
            cm = (ef.get("configMapRef") or {}).get("name")
            if cm and cm not in configmaps:
                problem(f"{stage}: {name}: envFrom ConfigMap {cm} is not rendered")
    for vol in pod.get("volumes", []):
        if "secret" in vol and vol["secret"]["secretName"] not in secrets:
            problem(f"{stage}: {name}: volume {vol['name']} mounts Secret {vol['secret']['secretName']}, which make-secrets.sh does not write")
        if "configMap" in vol and vol["configMap"]["name"] not in configmaps:
            problem(f"{stage}: {name}: volume {vol['name']} mounts ConfigMap {vol['configMap']['name']}, which is not rendered")


def check_kubernetes(rendered: Path, secrets_dir: Path, stage: str) -> None:
    docs = load_docs(rendered)
    kinds: dict[str, dict[str, dict]] = {}
    for d in docs:
        kinds.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    secrets = secrets_written(secrets_dir)
    configmaps = set(kinds.get("ConfigMap", {}))

    deployments = kinds.get("Deployment", {})
    for s in IDBRIDGE_SERVICES:
        if s not in deployments:
            problem(f"{stage}: no Deployment {s}")
    if "Job" in kinds:
        problem(f"{stage}: the overlay renders Jobs ({sorted(kinds['Job'])}); the migration Job belongs to overlays/{stage}/migrate, applied first")
    for w in deployments.values():
        check_workload(stage, w, secrets, configmaps)
    for s, d in deployments.items():
        ct = d["spec"]["template"]["spec"]["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in ct.get("ports", [])}
        if ports.get("admin") != 9000:
            problem(f"{stage}: Deployment {s}: no admin port 9000")
        live = (ct.get("livenessProbe") or {}).get("httpGet", {})
        ready = (ct.get("readinessProbe") or {}).get("httpGet", {})
        if live.get("path") != "/healthz" or live.get("port") != "admin":
            problem(f"{stage}: Deployment {s}: liveness probe is not GET /healthz on the admin port")
        if ready.get("path") != "/readyz" or ready.get("port") != "admin":
            problem(f"{stage}: Deployment {s}: readiness probe is not GET /readyz on the admin port")
        if ct.get("args", [])[:2] != ["serve", s]:
            problem(f"{stage}: Deployment {s}: does not run `idbridge serve {s}`")
        if s not in kinds.get("PodDisruptionBudget", {}):
            problem(f"{stage}: Deployment {s}: no PodDisruptionBudget")
    # Autoscaling: the bus's partitions are single-active-consumer queues (one replica consumes
    # them all, the others are standbys), so only the writer scales, for its HTTP API, and
    # within a small range; every other Deployment has a fixed replica count.
    hpas = kinds.get("HorizontalPodAutoscaler", {})
    for name, h in hpas.items():
        target = h["spec"]["scaleTargetRef"]["name"]
        if target != "writer":
            problem(f"{stage}: HorizontalPodAutoscaler {name} scales {target}; replicas of a bus consumer are standbys (only the writer's HTTP API gains)")
    writer_hpa = next((h for h in hpas.values() if h["spec"]["scaleTargetRef"]["name"] == "writer"), None)
    if not writer_hpa:
        problem(f"{stage}: no HorizontalPodAutoscaler for the writer's HTTP API")
    else:
        lo, hi = writer_hpa["spec"].get("minReplicas", 1), writer_hpa["spec"]["maxReplicas"]
        if not 1 <= lo <= hi <= 3:
            problem(f"{stage}: the writer's HPA runs {lo}-{hi}; more than 3 replicas only adds standbys")
        if stage == "production" and lo < 2:
            problem(f"{stage}: the writer's HPA must keep 2 replicas (failover)")
        if "replicas" in deployments.get("writer", {}).get("spec", {}):
            problem(f"{stage}: Deployment writer sets replicas, which would fight its HorizontalPodAutoscaler")
    for s, d in deployments.items():
        if s != "writer" and not isinstance(d["spec"].get("replicas"), int):
            problem(f"{stage}: Deployment {s} has no replica count (and no autoscaler)")
    # The portal's connect-page texts: every stage overrides the defaults (which name
    # "Example University"); nothing of the example institution reaches production.
    env_cm = next((d["data"] for n, d in kinds.get("ConfigMap", {}).items() if n.startswith("idbridge-env")), {})
    for what in ("NAME", "WHAT", "WHY", "HOW"):
        if not env_cm.get(f"IDBRIDGE__PORTAL__INSTITUTION__{what}", "").strip():
            problem(f"{stage}: config.env does not set IDBRIDGE__PORTAL__INSTITUTION__{what} (the portal would show its default, Example University)")
    if stage == "production" and "Example University" in rendered.read_text():
        problem(f"{stage}: the rendered overlay mentions Example University")
    # Services and Ingresses point at real ports.
    for name, svc in kinds.get("Service", {}).items():
        dep = deployments.get(name)
        names = {p["name"] for p in dep["spec"]["template"]["spec"]["containers"][0].get("ports", [])} if dep else set()
        for p in svc["spec"]["ports"]:
            if p.get("targetPort") not in names:
                problem(f"{stage}: Service {name} targets port {p.get('targetPort')}, which its Deployment does not name")
    ingress_backends = set()
    for name, ing in kinds.get("Ingress", {}).items():
        if not ing["spec"].get("tls"):
            problem(f"{stage}: Ingress {name} has no TLS")
        for rule in ing["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                b = path["backend"]["service"]
                ingress_backends.add(b["name"])
                if b["name"] not in kinds.get("Service", {}):
                    problem(f"{stage}: Ingress {name} routes to unknown Service {b['name']}")
    if ingress_backends != {"portal", "webhook-receiver"}:
        problem(f"{stage}: Ingresses route to {sorted(ingress_backends)}, expected the portal and the webhook receiver only")
    # The vault is reachable only from the workers and the portal.
    pols = kinds.get("NetworkPolicy", {})
    deny = [p for p in pols.values() if p["spec"].get("podSelector") == {} and "Ingress" in p["spec"].get("policyTypes", []) and not p["spec"].get("ingress")]
    if not deny:
        problem(f"{stage}: no default-deny ingress NetworkPolicy")
    vault_from = set()
    for p in pols.values():
        sel = p["spec"].get("podSelector", {})
        if sel.get("matchLabels", {}).get("app.kubernetes.io/component") == "token-vault":
            for rule in p["spec"].get("ingress", []):
                for peer in rule.get("from", []):
                    if "namespaceSelector" in peer or "ipBlock" in peer:
                        problem(f"{stage}: NetworkPolicy {p['metadata']['name']} lets other namespaces reach the vault")
                    for expr in peer.get("podSelector", {}).get("matchExpressions", []):
                        if expr["key"] == "app.kubernetes.io/component":
                            vault_from |= set(expr["values"])
    if vault_from != {"writer", "reader", "webhook-receiver", "portal"}:
        problem(f"{stage}: the vault's API is open to {sorted(vault_from)}, expected the workers and the portal")
    # The vault's egress: DNS, PostgreSQL, AMQP, https (ORCID) and OTLP, nothing else.
    egress = [p for p in pols.values()
              if p["spec"].get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component") == "token-vault"
              and "Egress" in p["spec"].get("policyTypes", [])]
    if not egress:
        problem(f"{stage}: no egress NetworkPolicy for the token vault")
    else:
        ports = {(pt.get("protocol", "TCP"), pt.get("port")) for p in egress for r in p["spec"].get("egress", []) for pt in r.get("ports", [])}
        for need in (("UDP", 53), ("TCP", 53), ("TCP", 5432), ("TCP", 443)):
            if need not in ports:
                problem(f"{stage}: the token vault's egress policy does not allow {need[0]} {need[1]}")
        if not ports & {("TCP", 5671), ("TCP", 5672)}:
            problem(f"{stage}: the token vault's egress policy does not allow AMQP (5671/5672)")
        for p in egress:
            for r in p["spec"].get("egress", []):
                if not r.get("ports"):
                    problem(f"{stage}: NetworkPolicy {p['metadata']['name']} has an egress rule without ports (allows everything)")
    ns = kinds.get("Namespace", {})
    for n in ns.values():
        if n["metadata"].get("labels", {}).get("pod-security.kubernetes.io/enforce") != "restricted":
            problem(f"{stage}: Namespace {n['metadata']['name']} does not enforce the restricted Pod Security Standard")
    if not ns:
        problem(f"{stage}: no Namespace")
    if "Secret" in kinds:
        problem(f"{stage}: the overlay renders Secrets ({sorted(kinds['Secret'])}); they are created out of band")
    finish(f"kubernetes {stage}: {len(docs)} objects; security contexts, probes, resources, writer-only HPA, fixed replicas, PDBs, Ingress, "
           f"NetworkPolicies (vault ingress and egress), portal texts, no Job, Secret keys")


# ---------------------------------------------------------------------------------------------
# The shipped configuration, loaded by the real binary


def run_service(binary: str, service: str, config: Path, env: dict[str, str]) -> tuple[int, str]:
    full = {k: v for k, v in os.environ.items() if not k.upper().startswith("IDBRIDGE__") and not k.startswith("OTEL_")}
    full.update(env)
    full["IDBRIDGE__ADMIN__LISTEN"] = "127.0.0.1:0"
    try:
        p = subprocess.run([binary, "serve", service, "--config", str(config)], env=full,
                           capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return -1, "did not stop within 60 s (it should have failed on the unreachable database)"
    return p.returncode, p.stdout + p.stderr


def excerpt(out: str) -> str:
    """The lines that explain a failed start (the log's JSON lines left out)."""
    lines = [l for l in out.strip().splitlines() if not l.lstrip().startswith("{")]
    return "\n      ".join(lines[-8:])


def expect_config_ok(what: str, code: int, out: str) -> None:
    tail = excerpt(out)
    if "invalid configuration" in out or "cannot connect to the database" not in out:
        problem(f"{what}: the configuration does not load (expected to stop only at the unreachable database):\n      {tail}")


def parse_env_file(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            k, _, v = line.partition("=")
            env[k.strip()] = v
    return env


def config_compose(root: Path, binary: str, secrets_dir: Path) -> None:
    rendered = json.loads(subprocess.run(
        [os.environ.get("DOCKER_COMPOSE", "docker-compose"), "-f", str(root / "docker-compose.yml"), "config", "--format", "json"],
        env={**os.environ, "IDBRIDGE_SECRETS_DIR": str(secrets_dir)}, capture_output=True, text=True, check=True).stdout)
    config = root / "deploy/compose/idbridge.toml"
    for s in IDBRIDGE_SERVICES:
        svc = rendered["services"][s]
        env = {k: v for k, v in (svc.get("environment") or {}).items() if v is not None}
        if s == "token-vault":
            env["IDBRIDGE__VAULT__KEY_DIR"] = str(secrets_dir / "kek")
        code, out = run_service(binary, s, config, env)
        expect_config_ok(f"compose {s}", code, out)
    finish("compose configuration: each service loads deploy/compose/idbridge.toml with its secrets (real binary)")


def release_of(image: str) -> tuple[str, str]:
    """(name, tag) of an image reference (a digest after @ ignored)."""
    ref = image.split("@", 1)[0]
    name, _, tag = ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "")
    return name, tag


def check_migrate(migrate: Path, services: Path, secrets_dir: Path, stage: str) -> None:
    docs = load_docs(migrate)
    jobs = [d for d in docs if d["kind"] == "Job"]
    others = sorted(f"{d['kind']} {d['metadata']['name']}" for d in docs if d["kind"] != "Job")
    if len(jobs) != 1 or others:
        problem(f"{stage} migrate: expected exactly one Job, got {len(jobs)} and {others}")
        finish(f"kubernetes {stage} migrate")
    job = jobs[0]
    svc_docs = load_docs(services)
    deployments = [d for d in svc_docs if d["kind"] == "Deployment"]
    ns = {d["metadata"].get("namespace") for d in deployments}
    if {job["metadata"].get("namespace")} != ns:
        problem(f"{stage} migrate: the Job's namespace {job['metadata'].get('namespace')} is not the services' {sorted(ns)}")
    images = {d["spec"]["template"]["spec"]["containers"][0]["image"] for d in deployments}
    job_image = job["spec"]["template"]["spec"]["containers"][0]["image"]
    if images != {job_image}:
        problem(f"{stage} migrate: the Job runs {job_image}, the services {sorted(images)}: set the same newTag (and digest) in both kustomizations")
    _, tag = release_of(job_image)
    expected = "idbridge-migrate-v" + re.sub(r"[^a-z0-9]+", "-", tag.lower()).strip("-")
    if job["metadata"]["name"] != expected:
        problem(f"{stage} migrate: the Job is named {job['metadata']['name']}, expected {expected} (nameSuffix -v<tag>): "
                "each release needs a new Job, a Job's template cannot be changed")
    spec = job["spec"]
    if spec.get("parallelism", 1) != 1 or spec.get("completions", 1) != 1:
        problem(f"{stage} migrate: the migrator takes no lock; the Job must run one pod (parallelism, completions 1)")
    if not spec.get("ttlSecondsAfterFinished"):
        problem(f"{stage} migrate: no ttlSecondsAfterFinished (old releases' Jobs would pile up)")
    pod = spec["template"]["spec"]
    ct = pod["containers"][0]
    if ct.get("args", [])[:1] != ["migrate"]:
        problem(f"{stage} migrate: the Job does not run `idbridge migrate`")
    if ct.get("envFrom") or any("configMap" in v for v in pod.get("volumes", [])):
        problem(f"{stage} migrate: the Job reads a ConfigMap; a hashed ConfigMap name would tie the Job to every config edit")
    check_workload(f"{stage} migrate", job, secrets_written(secrets_dir), set())
    for d in deployments:
        for c in d["spec"]["template"]["spec"].get("initContainers", []):
            if "migrate" in c.get("args", []):
                problem(f"{stage}: Deployment {d['metadata']['name']} migrates in an initContainer (replicas would race: no lock)")
    finish(f"kubernetes {stage} migrate: one Job {job['metadata']['name']} for the services' image {job_image}, no ConfigMap")


def migrate_run(binary: str, migrate: Path, database_url: str) -> None:
    job = next(d for d in load_docs(migrate) if d["kind"] == "Job")
    ct = job["spec"]["template"]["spec"]["containers"][0]
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("IDBRIDGE__") and not k.startswith("OTEL_")}
    for e in ct.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
        elif e["valueFrom"]["secretKeyRef"]["name"] == "idbridge-database":
            env[e["name"]] = database_url
        else:
            problem(f"migrate Job: env {e['name']} reads {e['valueFrom']}; the Job should need only the database URL")
    for attempt in ("first run", "second run (idempotent)"):
        p = subprocess.run([binary] + ct.get("args", []), env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        applied = p.stdout.count("migrations applied")
        if p.returncode != 0 or applied != len(IDBRIDGE_SERVICES):
            problem(f"migrate Job {attempt}: exit {p.returncode}, {applied} services migrated:\n      " + excerpt(p.stdout + p.stderr))
            break
    finish(f"migrate Job: `idbridge {' '.join(ct.get('args', []))}` with only the Job's env migrates an empty database, twice")


def config_kubernetes(binary: str, rendered: Path, secrets_dir: Path, stage: str, expect_invalid: dict[str, str]) -> None:
    docs = load_docs(rendered)
    cms = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    secret_data = {}
    import base64
    for f in secrets_dir.glob("*.yaml"):
        for d in load_docs(f):
            secret_data[d["metadata"]["name"]] = {k: base64.b64decode(v).decode() for k, v in (d.get("data") or {}).items()}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        kek = tmp / "kek"
        kek.mkdir()
        for k, v in secret_data["idbridge-vault-kek"].items():
            (kek / k).write_text(v)
        for d in docs:
            if d["kind"] != "Deployment":
                continue
            name = d["metadata"]["name"]
            pod = d["spec"]["template"]["spec"]
            ct = pod["containers"][0]
            env = {}
            for ef in ct.get("envFrom", []):
                env.update(cms[ef["configMapRef"]["name"]]["data"])
            for e in ct.get("env", []):
                if "value" in e:
                    env[e["name"]] = e["value"]
                else:
                    ref = e["valueFrom"]["secretKeyRef"]
                    val = secret_data.get(ref["name"], {}).get(ref["key"])
                    if val is not None:
                        env[e["name"]] = val
            cfg_cm = next(v["configMap"]["name"] for v in pod["volumes"] if v["name"] == "config")
            cfg = tmp / f"{name}.toml"
            cfg.write_text(cms[cfg_cm]["data"]["idbridge.toml"])
            if name == "token-vault":
                env["IDBRIDGE__VAULT__KEY_DIR"] = str(kek)
            code, out = run_service(binary, name, cfg, env)
            if name in expect_invalid:
                keys = expect_invalid[name].split(",")
                if "invalid configuration" not in out or not all(f"- {k}:" in out for k in keys):
                    problem(f"kubernetes {stage} {name}: expected the start to be refused naming {', '.join(keys)}; got:\n      " + excerpt(out))
            else:
                expect_config_ok(f"kubernetes {stage} {name}", code, out)
    finish(f"kubernetes {stage} configuration: each Deployment's ConfigMap, env and Secrets load in the real binary"
           + (f" ({', '.join(f'{k} refused until {v} is set' for k, v in expect_invalid.items())})" if expect_invalid else ""))


# ---------------------------------------------------------------------------------------------
# Dockerfile


def check_dockerfile(root: Path) -> None:
    root = root.resolve()
    text = (root / "Dockerfile").read_text()
    lines = [l.strip() for l in re.sub(r"\\\n", " ", text).splitlines() if l.strip() and not l.strip().startswith("#")]
    froms = [l for l in lines if l.upper().startswith("FROM ")]
    if len(froms) < 2:
        problem("Dockerfile: not multi-stage")
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", "\n".join(lines), re.M))
    for f in froms:
        image = f.split()[1]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), image)
        if "@sha256:" not in image and not re.fullmatch(r"(rust:\d+\.\d+\.\d+-\w+|debian:(\d+\.\d+-slim|\w+-\d{8}-slim))", image):
            problem(f"Dockerfile: base image {image} is not an exact version (rust:x.y.z-<release>, debian:x.y-slim or a digest)")
    users = [l.split(None, 1)[1] for l in lines if l.upper().startswith("USER ")]
    if not users or not re.fullmatch(r"[1-9]\d*(:\d+)?", users[-1]):
        problem("Dockerfile: the last USER must be a numeric non-root UID")
    if not any(l.startswith("ENTRYPOINT") and "idbridge" in l for l in lines):
        problem("Dockerfile: ENTRYPOINT is not idbridge")
    if "--locked" not in text or "-p idbridge" not in text or "-p orcid-sim" not in text:
        problem("Dockerfile: must build idbridge and orcid-sim with --locked")
    if "healthcheck.sh" in text and not (root / "deploy/docker/healthcheck.sh").exists():
        problem("Dockerfile: deploy/docker/healthcheck.sh is missing")
    ignore = (root / ".dockerignore").read_text().split()
    for needed in ("/target", ".git"):
        if needed not in ignore:
            problem(f".dockerignore: does not exclude {needed}")
    context = build_context(root)
    for f in context:
        if f.startswith(("target/", ".git/")) or "/secrets/" in f or f.endswith(".env"):
            problem(f"build context: {f} would be sent to the Docker build")
    # What the build reads must be in the context: every workspace member's manifest, and
    # every file a crate embeds with include_str!/include_bytes!.
    needed = {"Cargo.toml", "Cargo.lock", "deploy/docker/healthcheck.sh"}
    members = re.search(r"members\s*=\s*\[([^\]]*)\]", (root / "Cargo.toml").read_text())
    for pattern in re.findall(r'"([^"]+)"', members.group(1) if members else ""):
        for d in sorted(root.glob(pattern)):
            if (d / "Cargo.toml").exists():
                needed.add(str((d / "Cargo.toml").relative_to(root)))
    embedded = 0
    for src in list(root.glob("crates/*/src/**/*.rs")) + list(root.glob("services/*/src/**/*.rs")):
        code = "\n".join(l for l in src.read_text(errors="replace").splitlines() if not l.lstrip().startswith("//"))
        for m in re.finditer(r'include_(?:str|bytes)!\(\s*"([^"]+)"\s*\)', code):
            target = (src.parent / m.group(1)).resolve()
            if target.is_relative_to(root):
                needed.add(str(target.relative_to(root)))
                embedded += 1
    for schema in (root / "proto/schemas").glob("*.json"):
        needed.add(str(schema.relative_to(root)))
    for f in sorted(needed - context):
        problem(f"build context: {f} is needed by the build but excluded by .dockerignore (or missing)")
    finish(f"Dockerfile: multi-stage, numeric non-root USER, ENTRYPOINT idbridge, --locked; "
           f"build context of {len(context)} files holds every manifest and the {embedded} embedded files, no target/ or secrets")


def build_context(root: Path) -> set[str]:
    """The files `docker build .` sends, by .dockerignore (Docker's rules for the patterns
    used here: leading `/` anchors nothing extra, `**` any depth, no `!` exceptions)."""
    import fnmatch

    patterns = []
    for line in (root / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("!"):
            problem(".dockerignore: exceptions (!) are not understood by this check")
            continue
        patterns.append(line.lstrip("/").rstrip("/"))

    def ignored(rel: str) -> bool:
        parts = rel.split("/")
        for pat in patterns:
            # A pattern matches the path or any of its parent directories.
            for i in range(1, len(parts) + 1):
                prefix = "/".join(parts[:i])
                if fnmatch.fnmatchcase(prefix, pat) or (pat.startswith("**/") and fnmatch.fnmatchcase(prefix, pat[3:])) \
                        or (pat.startswith("**/") and fnmatch.fnmatchcase(parts[i - 1], pat[3:])):
                    return True
        return False

    files = set()
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = [d for d in dirnames if not ignored(rel_dir + d)]
        for f in filenames:
            if not ignored(rel_dir + f):
                files.add(rel_dir + f)
    return files


def main() -> None:
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "metrics":
        check_metrics(Path(args[0]))
    elif cmd == "dashboard":
        check_dashboard(Path(args[0]))
    elif cmd == "otel":
        check_otel(Path(args[0]))
    elif cmd == "compose":
        check_compose(Path(args[0]), Path(args[1]))
    elif cmd == "kubernetes":
        check_kubernetes(Path(args[0]), Path(args[1]), args[2])
    elif cmd == "migrate":
        check_migrate(Path(args[0]), Path(args[1]), Path(args[2]), args[3])
    elif cmd == "migrate-run":
        migrate_run(args[0], Path(args[1]), args[2])
    elif cmd == "config-compose":
        config_compose(Path(args[0]), args[1], Path(args[2]))
    elif cmd == "config-kubernetes":
        expect = dict(a.split("=", 1) for a in args[4:])
        config_kubernetes(args[0], Path(args[1]), Path(args[2]), args[3], expect)
    elif cmd == "dockerfile":
        check_dockerfile(Path(args[0]))
    else:
        sys.exit(f"unknown check {cmd}")


if __name__ == "__main__":
    main()
