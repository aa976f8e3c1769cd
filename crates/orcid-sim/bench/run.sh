#!/usr/bin/env bash
# Raw capacity of orcid-sim: GET record and POST employment with wrk, 10 s per point.
# Usage: crates/orcid-sim/bench/run.sh [connections...]   (default: 16 64 256)
# Needs: cargo build -p orcid-sim --release; wrk; python3; curl.
# The GET points share one simulator; each POST point gets a fresh one (fresh, empty records),
# so a point's figure does not depend on how many items earlier points left behind. With
# SHARED_POST=1 the POST points run one after another on one simulator instead (records grow
# from point to point: a check that write cost does not grow with the record).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
bin="${BIN:-$root/target/release/orcid-sim}"
port=${PORT:-18091}
base="http://127.0.0.1:$port"
conns=("${@:-16 64 256}")
read -r -a conns <<< "${conns[*]}"
work=$(mktemp -d)
client_id=APP-BENCH00000000001
client_secret=bench-only-secret
sim=""

stop_sim() {
  if [ -n "$sim" ]; then
    kill "$sim" 2>/dev/null || true
    wait "$sim" 2>/dev/null || true
    sim=""
  fi
}
trap 'stop_sim; rm -rf "$work"' EXIT

# Starts the simulator and waits (at most 30 s) for its listening line.
start_sim() {
  : >"$work/stdout"
  "$bin" --listen "127.0.0.1:$port" --workers 2 \
    --client "$client_id:$client_secret:http://127.0.0.1:9/cb" >"$work/stdout" 2>"$work/stderr" &
  sim=$!
  local deadline=$((SECONDS + 30))
  until grep -q '^listening on ' "$work/stdout" 2>/dev/null; do
    if ! kill -0 "$sim" 2>/dev/null; then
      echo "orcid-sim exited before listening:" >&2
      cat "$work/stderr" >&2
      exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "orcid-sim did not print its listening line within 30 s" >&2
      exit 1
    fi
    sleep 0.1
  done
}

# 200 users, each connected with /read-limited /activities/update; the first gets 5 employments.
seed() {
python3 - "$base" "$client_id" "$client_secret" "$work" <<'PY'
import json, sys, urllib.parse, urllib.request
base, cid, secret, work = sys.argv[1:5]
class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k): return None
opener = urllib.request.build_opener(NoRedirect)
def call(method, path, data=None, headers=None):
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers or {})
    try:
        return opener.open(req)
    except urllib.error.HTTPError as e:
        return e
lines = []
for i in range(200):
    res = call("POST", "/_sim/users", json.dumps({"given-names": "Bench", "family-name": str(i),
        "email": f"bench{i}@mailinator.com", "password": "bench"}).encode(), {"Content-Type": "application/json"})
    orcid = json.load(res)["orcid"]
    q = urllib.parse.urlencode({"client_id": cid, "response_type": "code",
        "scope": "/read-limited /activities/update", "redirect_uri": "http://127.0.0.1:9/cb", "sim_user": orcid})
    loc = call("GET", "/oauth/authorize?" + q).headers["Location"]
    code = urllib.parse.parse_qs(urllib.parse.urlparse(loc).query)["code"][0]
    form = urllib.parse.urlencode({"client_id": cid, "client_secret": secret, "grant_type": "authorization_code",
        "code": code, "redirect_uri": "http://127.0.0.1:9/cb"}).encode()
    token = json.load(call("POST", "/oauth/token", form))["access_token"]
    lines.append(f"{orcid} {token}")
open(f"{work}/targets.txt", "w").write("\n".join(lines[1:]) + "\n")
open(f"{work}/record.txt", "w").write(lines[0])
orcid, token = lines[0].split()
for n in range(5):
    body = json.dumps({"department-name": "Seed", "role-title": "Engineer",
        "start-date": {"year": {"value": "2020"}},
        "organization": {"name": "Boston University", "address": {"city": "Boston", "region": "Massachusetts", "country": "US"},
            "disambiguated-organization": {"disambiguated-organization-identifier": "https://ror.org/05qwgg493", "disambiguation-source": "ROR"}},
        "external-ids": {"external-id": [{"external-id-type": "grant_number", "external-id-value": f"seed-{n}", "external-id-relationship": "self"}]}}).encode()
    res = call("POST", f"/v3.0/{orcid}/employment", body, {"Authorization": "Bearer " + token,
        "Content-Type": "application/vnd.orcid+json", "Accept": "application/vnd.orcid+json"})
    assert res.status == 201, res.status
PY
}

stats() { curl -s "$base/_sim/stats"; echo; curl -s -X DELETE "$base/_sim/stats" >/dev/null; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
start_sim
seed
curl -s -X DELETE "$base/_sim/stats" >/dev/null
for c in "${conns[@]}"; do
  echo "== GET /v3.0/{orcid}/record, $c connections"
  RECORD=$(cat "$work/record.txt") wrk -t2 -c"$c" -d10s --latency -s "$here/get_record.lua" "$base"
  stats
done
stop_sim
if [ "${SHARED_POST:-0}" = 1 ]; then
  start_sim
  seed
fi
for c in "${conns[@]}"; do
  if [ "${SHARED_POST:-0}" != 1 ]; then
    start_sim
    seed
  fi
  curl -s -X DELETE "$base/_sim/stats" >/dev/null
  echo "== POST /v3.0/{orcid}/employment, $c connections"
  RUN="c$c" TARGETS="$work/targets.txt" wrk -t2 -c"$c" -d10s --latency -s "$here/post_employment.lua" "$base"
  body=$(curl -s "$base/_sim/stats")
  echo "$body"
  # Every target record holds about as many employments as it received, over all points run
  # on this simulator.
  curl -s "$base/_sim/records/$(head -n1 "$work/targets.txt" | cut -d' ' -f1)" |
    python3 -c 'import json,sys; print("first target record now holds", len(json.load(sys.stdin)["items"]["employments"]), "employments")'
  if [ "${SHARED_POST:-0}" != 1 ]; then
    stop_sim
  fi
done
