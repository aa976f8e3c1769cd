#!/bin/bash
# idbridge-healthcheck [PATH]: GET PATH (default /healthz) from the admin server of
# `idbridge serve` inside the container, with bash's /dev/tcp (the image has no curl).
# The port is the one of IDBRIDGE__ADMIN__LISTEN (default 9000). Exit 0 on HTTP 200.
set -euo pipefail
path="${1:-/healthz}"
listen="${IDBRIDGE__ADMIN__LISTEN:-0.0.0.0:9000}"
port="${listen##*:}"
exec 3<>"/dev/tcp/127.0.0.1/${port}"
printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$path" >&3
IFS= read -r -t 3 status <&3
exec 3<&-
case "$status" in
  "HTTP/1."?" 200"*) exit 0 ;;
  *) echo "admin ${path}: ${status:-no answer}" >&2; exit 1 ;;
esac
