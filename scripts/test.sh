#!/usr/bin/env bash
# The whole test suite: makes sure PostgreSQL and RabbitMQ are reachable (starting them when
# they are installed but stopped), then runs every test of every crate.
#
#   ./scripts/test.sh            # everything
#   ./scripts/test.sh -p orcid   # extra arguments go to cargo nextest / cargo test
#
# A test that needs a service fails when the service is missing; this script fails first and
# says which one and how to install it.
set -euo pipefail
cd "$(dirname "$0")/.."

export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export TEST_AMQP_URL="${TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"

say() { printf 'test.sh: %s\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_for_port() { # host port seconds
  local deadline=$((SECONDS + $3))
  until port_open "$1" "$2"; do
    if ((SECONDS >= deadline)); then return 1; fi
    sleep 1
  done
}

ensure_postgres() {
  port_open 127.0.0.1 5432 && return 0
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    local version
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    say "PostgreSQL is not listening on 127.0.0.1:5432; starting cluster $version/main"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    wait_for_port 127.0.0.1 5432 60 && return 0
  fi
  say "FATAL: PostgreSQL is required on 127.0.0.1:5432 (trust auth) and could not be started."
  say "       Install it with: apt-get install -y postgresql   (or set TEST_DATABASE_URL)"
  exit 1
}

ensure_rabbitmq() {
  port_open 127.0.0.1 5672 && return 0
  if command -v rabbitmq-server >/dev/null 2>&1; then
    say "RabbitMQ is not listening on 127.0.0.1:5672; starting it"
    rabbitmq-server -detached || true
    wait_for_port 127.0.0.1 5672 120 && return 0
  fi
  say "FATAL: RabbitMQ is required on 127.0.0.1:5672 (guest/guest) and could not be started."
  say "       Install it with: apt-get install -y rabbitmq-server   (or set TEST_AMQP_URL)"
  exit 1
}

if [ ! -d ../shared/reference/orcid-model ]; then
  say "FATAL: ../shared/reference/orcid-model (ORCID's official samples) is missing beside the project root."
  exit 1
fi

ensure_rabbitmq_plugins() {
  # The bus routes per-iD partitions through a consistent-hash exchange; the plugin ships with
  # RabbitMQ and enabling it is idempotent and online.
  if command -v rabbitmq-plugins >/dev/null 2>&1; then
    rabbitmq-plugins enable --quiet rabbitmq_consistent_hash_exchange >/dev/null \
      || { say "FATAL: could not enable rabbitmq_consistent_hash_exchange"; exit 1; }
  else
    say "rabbitmq-plugins not found: make sure rabbitmq_consistent_hash_exchange is enabled on $TEST_AMQP_URL"
  fi
}

ensure_browser() {
  # The portal's browser tests drive Debian's Chromium through ChromeDriver.
  if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    return 0
  fi
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    say "installing chromium and chromium-driver for the portal's browser tests"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q chromium chromium-driver >/dev/null \
      || { apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null; } \
      || true
  fi
  if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    return 0
  fi
  say "FATAL: the portal's browser tests need Chromium and ChromeDriver."
  say "       Install them with: apt-get install -y chromium chromium-driver"
  exit 1
}

ensure_postgres
ensure_rabbitmq
ensure_rabbitmq_plugins
ensure_browser
say "PostgreSQL, RabbitMQ, Chromium and ChromeDriver are ready"

# Doc tests first (README examples included; nextest does not run them), so that the run ends
# with the main runner's summary.
cargo test --workspace --doc "$@"

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
else
  say "cargo-nextest not installed; using cargo test"
  cargo test --workspace --no-fail-fast "$@"
fi
