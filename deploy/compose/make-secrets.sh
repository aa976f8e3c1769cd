#!/usr/bin/env bash
# Writes the secrets docker-compose.yml reads, once: fresh random keys and caller tokens.
#
#   deploy/compose/make-secrets.sh [DIR]     (DIR: $IDBRIDGE_SECRETS_DIR, else deploy/compose/secrets)
#
# DIR/kek/compose1, DIR/kek/active      the vault's key-encryption key ring (a compose secret each)
# DIR/<service>.env                     each service's secrets as IDBRIDGE__… variables
# DIR/hr-system-token                   the bearer token of the writer API's `hr-system` caller
# DIR/grafana-admin-password            Grafana's `admin` password
#
# Existing files are kept (the key ring encrypts the stored tokens: replacing it would make
# them unreadable — rotate with `idbridge keys rotate` instead, deploy/README.md). A
# directory holding only some of the files is an error. Needs only coreutils. Values are
# never printed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="${1:-${IDBRIDGE_SECRETS_DIR:-$here/secrets}}"

files=(kek/compose1 kek/active token-vault.env writer.env reader.env webhook-receiver.env
       portal.env hr-system-token grafana-admin-password)
present=0
for f in "${files[@]}"; do [[ -e "$dir/$f" ]] && present=$((present + 1)); done
if (( present == ${#files[@]} )); then
  echo "secrets already in $dir (kept)"
  exit 0
elif (( present > 0 )); then
  echo "error: $dir holds only some of the secrets; move it away to make new ones, or restore the missing files" >&2
  exit 1
fi

umask 077
mkdir -p "$dir/kek"
rand_b64() { head -c "$1" /dev/urandom | base64 -w0; }
rand_hex() { head -c 32 /dev/urandom | od -An -vtx1 | tr -d ' \n'; }
sha() { printf %s "$1" | sha256sum | cut -d' ' -f1; }

writer_vault="$(rand_hex)"; reader_vault="$(rand_hex)"; receiver_vault="$(rand_hex)"
portal_vault="$(rand_hex)"; portal_writer="$(rand_hex)"; hr_system="$(rand_hex)"

rand_b64 32 > "$dir/kek/compose1"
printf compose1 > "$dir/kek/active"

cat > "$dir/token-vault.env" <<ENV
IDBRIDGE__VAULT__HANDOFF_KEYS=hk-compose1:$(rand_b64 32)
IDBRIDGE__VAULT__CALLERS__WRITER__TOKEN_SHA256=$(sha "$writer_vault")
IDBRIDGE__VAULT__CALLERS__READER__TOKEN_SHA256=$(sha "$reader_vault")
IDBRIDGE__VAULT__CALLERS__WEBHOOK_RECEIVER__TOKEN_SHA256=$(sha "$receiver_vault")
IDBRIDGE__VAULT__CALLERS__PORTAL__TOKEN_SHA256=$(sha "$portal_vault")
ENV
cat > "$dir/writer.env" <<ENV
IDBRIDGE__WRITER__VAULT__CALLER_TOKEN=$writer_vault
IDBRIDGE__WRITER__HTTP__CALLERS=[{name="portal",token_sha256="$(sha "$portal_writer")",rights=["items:read","invitations:read","invitations:manage"]},{name="hr-system",token_sha256="$(sha "$hr_system")",rights=["hr-events:write","items:read"]}]
ENV
cat > "$dir/reader.env" <<ENV
IDBRIDGE__READER__VAULT__CALLER_TOKEN=$reader_vault
ENV
cat > "$dir/webhook-receiver.env" <<ENV
IDBRIDGE__WEBHOOKS__CALLBACK_KEY=$(rand_hex)
IDBRIDGE__WEBHOOKS__VAULT__CALLER_TOKEN=$receiver_vault
ENV
cat > "$dir/portal.env" <<ENV
IDBRIDGE__PORTAL__SESSION_KEY=$(rand_b64 64)
IDBRIDGE__PORTAL__VAULT__CALLER_TOKEN=$portal_vault
IDBRIDGE__PORTAL__WRITER__CALLER_TOKEN=$portal_writer
ENV
printf %s "$hr_system" > "$dir/hr-system-token"
rand_hex > "$dir/grafana-admin-password"
# The containers run as UID 10001 (idbridge) and 472 (Grafana): the mounted secret files
# must be readable by them (the directory itself stays private to its owner).
chmod 0644 "$dir/kek/compose1" "$dir/kek/active" "$dir/grafana-admin-password"
echo "secrets written to $dir"
