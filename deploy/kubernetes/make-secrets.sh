#!/usr/bin/env bash
# Writes the Secret manifests idbridge's Kubernetes overlays expect, for one namespace, with
# fresh random keys and caller tokens — to apply out of band (kubectl apply -f), or to feed
# your secret manager (Sealed Secrets, SOPS, External Secrets) under the same names and keys.
# Never commit the output.
#
#   ORCID_CLIENT_ID=APP-… ORCID_CLIENT_SECRET=… \
#   DATABASE_URL=postgres://idbridge:…@db.example:5432/idbridge \
#   AMQP_URL=amqps://idbridge:…@mq.example:5671/idbridge \
#   OIDC_CLIENT_SECRET=… \
#   deploy/kubernetes/make-secrets.sh NAMESPACE OUTDIR
#
# Optional: SMTP_URL (invitation e-mails), KEK_ID (default k<year>a), HANDOFF_ID (default
# hk<year>a). Writes OUTDIR/<secret>.yaml and OUTDIR/hr-system-token (the writer API
# token of the `hr-system` caller, to give to the HR integration). Refuses an OUTDIR that
# already holds any of them: the key ring (idbridge-vault-kek) encrypts every stored token,
# and a new one would make them unreadable — rotate instead (deploy/README.md § Key
# rotation). Needs kubectl (offline: --dry-run=client) and coreutils. Prints no value, and
# passes none on a command line (where `ps` would show it): each value goes through a file
# in a private (0700) temporary directory, removed on exit.
set -euo pipefail
if [[ $# -ne 2 ]]; then
  sed -n '2,20p' "$0" >&2
  exit 2
fi
ns="$1"
out="$2"
missing=()
for v in ORCID_CLIENT_ID ORCID_CLIENT_SECRET DATABASE_URL AMQP_URL OIDC_CLIENT_SECRET; do
  [[ -n "${!v:-}" ]] || missing+=("$v")
done
if (( ${#missing[@]} )); then
  echo "error: set ${missing[*]} (see the top of $0)" >&2
  exit 2
fi
secrets=(idbridge-orcid idbridge-database idbridge-amqp idbridge-vault-kek idbridge-vault
         idbridge-writer idbridge-reader idbridge-webhook-receiver idbridge-portal)
for s in "${secrets[@]}" hr-system-token; do
  f="$out/$s.yaml"; [[ $s == hr-system-token ]] && f="$out/$s"
  if [[ -e "$f" ]]; then
    echo "error: $f exists; this script never replaces secrets (see deploy/README.md § Key rotation)" >&2
    exit 1
  fi
done

umask 077
mkdir -p "$out"
year="$(date -u +%Y)"
kek_id="${KEK_ID:-k${year}a}"
handoff_id="${HANDOFF_ID:-hk${year}a}"
rand_b64() { head -c "$1" /dev/urandom | base64 -w0; }
rand_hex() { head -c 32 /dev/urandom | od -An -vtx1 | tr -d ' \n'; }
sha() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
tmp="$(mktemp -d)"   # mode 0700
trap 'rm -rf "$tmp"' EXIT
secret() { # NAME, then KEY VALUE pairs
  local name="$1"; shift
  local args=() dir="$tmp/$name"
  mkdir -m 0700 "$dir"
  while (( $# )); do
    printf %s "$2" > "$dir/$1"   # printf is a shell builtin: the value is on no command line
    args+=("--from-file=$1=$dir/$1")
    shift 2
  done
  kubectl create secret generic "$name" --namespace "$ns" --dry-run=client -o yaml "${args[@]}" \
    | sed '/creationTimestamp: null/d' > "$out/$name.yaml"
}

writer_vault="$(rand_hex)"; reader_vault="$(rand_hex)"; receiver_vault="$(rand_hex)"
portal_vault="$(rand_hex)"; portal_writer="$(rand_hex)"; hr_system="$(rand_hex)"

secret idbridge-orcid client-id "$ORCID_CLIENT_ID" \
  client-secret "$ORCID_CLIENT_SECRET"
secret idbridge-database url "$DATABASE_URL"
# shellcheck disable=SC2153  # set by the caller; checked above
secret idbridge-amqp url "$AMQP_URL"
# The key ring as the vault reads a mounted directory: one file per key id, plus `active`.
secret idbridge-vault-kek "$kek_id" "$(rand_b64 32)" active "$kek_id"
secret idbridge-vault \
  handoff-keys "$handoff_id:$(rand_b64 32)" \
  writer-token-sha256 "$(sha "$writer_vault")" \
  reader-token-sha256 "$(sha "$reader_vault")" \
  webhook-receiver-token-sha256 "$(sha "$receiver_vault")" \
  portal-token-sha256 "$(sha "$portal_vault")"
writer_args=(vault-caller-token "$writer_vault"
  http-callers "[{name=\"portal\",token_sha256=\"$(sha "$portal_writer")\",rights=[\"items:read\",\"invitations:read\",\"invitations:manage\"]},{name=\"hr-system\",token_sha256=\"$(sha "$hr_system")\",rights=[\"hr-events:write\",\"items:read\"]}]")
[[ -n "${SMTP_URL:-}" ]] && writer_args+=(smtp-url "$SMTP_URL")
secret idbridge-writer "${writer_args[@]}"
secret idbridge-reader vault-caller-token "$reader_vault"
secret idbridge-webhook-receiver callback-key "$(rand_hex)" \
  vault-caller-token "$receiver_vault"
secret idbridge-portal session-key "$(rand_b64 64)" \
  vault-caller-token "$portal_vault" \
  writer-caller-token "$portal_writer" \
  oidc-client-secret "$OIDC_CLIENT_SECRET"
printf %s "$hr_system" > "$out/hr-system-token"
echo "wrote ${#secrets[@]} Secret manifests for namespace $ns and hr-system-token to $out (key ring $kek_id, hand-off key $handoff_id)"
