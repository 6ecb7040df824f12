#!/usr/bin/env bash
# Token-server benchmark on loopback: `dropkey serve` (release build) against a reference
# Node/Express implementation of the upload-token guide's GET /api/media/get-upload-token (bench/serve-ref), run
# twice: as the guide writes it (string secrets) and with KeyObject secrets (which spares
# jsonwebtoken a failed PEM parse per call). All are driven by wrk with the same request,
# concurrency and duration, in alternating rounds. Reports requests/s, p50 and p99 latency, and
# each server's peak RSS (VmHWM) under that load, as a table.
# Target: dropkey serve >= 5x the reference's throughput at a lower p99.
#
# Usage: bench/serve.sh   (env: DURATION=10s CONNECTIONS=64 THREADS=1 ROUNDS=3)
# Needs: wrk (apt-get install wrk), node + npm, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-1}"
ROUNDS="${ROUNDS:-3}"
command -v wrk >/dev/null || { echo "installing wrk" >&2; apt-get install -y -qq wrk >/dev/null; }
(cd bench/serve-ref && npm install --no-audit --no-fund --loglevel=error)
cargo build --release -p dropkey --quiet
DK="$PWD/target/release/dropkey"

WORK="$(mktemp -d /tmp/dropkey-serve-bench.XXXXXX)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
rand() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
PRIVATE_KEY="private_bench_$(rand)"
PUBLIC_KEY="public_bench"
URL_ENDPOINT="https://ik.imagekit.io/bench"
REQUEST_PATH="/api/media/get-upload-token?fileName=photo.jpg"

# Waits for a server's first stdout line and prints its listen address.
listen_of() { # OUTFILE PID
  for _ in $(seq 200); do
    [ -s "$1" ] && break
    kill -0 "$2" 2>/dev/null || { echo "error: the server exited; see ${1%.out}.err" >&2; cat "${1%.out}.err" >&2; exit 1; }
    sleep 0.05
  done
  head -1 "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["listen"])'
}

# 1. dropkey serve: one ImageKit V2 profile, the default policy, the audit log on, a rate limit
#    high enough not to be what is measured.
cat > "$WORK/config.toml" <<TOML
[profiles.ik]
provider = "imagekit"
public_key = "$PUBLIC_KEY"
url_endpoint = "$URL_ENDPOINT"
folder = "/uploads/chat"
tags = ["chat", "media"]
use_unique_file_name = true

[serve]
rate_limit_per_minute = 10000000
TOML
export DROPKEY_CONFIG="$WORK/config.toml" DROPKEY_DATA_DIR="$WORK/data"
DK_BEARER=$("$DK" serve token add bench | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
DROPKEY_SECRET_IK="$PRIVATE_KEY" "$DK" serve --listen 127.0.0.1:0 > "$WORK/dk.out" 2> "$WORK/dk.err" &
DK_PID=$!
PIDS+=("$DK_PID")
DK_ADDR=$(listen_of "$WORK/dk.out" "$DK_PID")

# 2. The reference, with a JWT bearer as the upload-token guide authenticates users: once with the
#    guide's string secrets, once with KeyObject secrets (see serve-ref/server.mjs).
JWT_SECRET="jwt_bench_$(rand)"
REF_BEARER=$(cd bench/serve-ref && JWT_SECRET="$JWT_SECRET" node -e \
  'console.log(require("jsonwebtoken").sign({ sub: "bench-user" }, process.env.JWT_SECRET, { expiresIn: 3600 }))')
start_ref() { # NAME KEYOBJECT
  (cd bench/serve-ref && Image_Kit_Private_Key_Owner="$PRIVATE_KEY" Image_Kit_Public_Key_Owner="$PUBLIC_KEY" \
    Image_Kit_URL="$URL_ENDPOINT" JWT_SECRET="$JWT_SECRET" REF_KEYOBJECT="$2" NODE_ENV=production \
    exec node server.mjs) > "$WORK/$1.out" 2> "$WORK/$1.err" &
}
start_ref ref 0
REF_PID=$!
PIDS+=("$REF_PID")
REF_ADDR=$(listen_of "$WORK/ref.out" "$REF_PID")
start_ref refko 1
REFKO_PID=$!
PIDS+=("$REFKO_PID")
REFKO_ADDR=$(listen_of "$WORK/refko.out" "$REFKO_PID")

NAMES=("dropkey serve" "Node/Express reference (the upload-token guide as written)" "Node/Express reference (KeyObject secrets)")
ADDRS=("$DK_ADDR" "$REF_ADDR" "$REFKO_ADDR")
BEARERS=("$DK_BEARER" "$REF_BEARER" "$REF_BEARER")
SERVER_PIDS=("$DK_PID" "$REF_PID" "$REFKO_PID")

# Each must answer the request correctly before it is measured.
for i in 0 1 2; do
  python3 - "${ADDRS[$i]}" "${BEARERS[$i]}" "$REQUEST_PATH" <<'PY'
import json, sys, urllib.request, base64
addr, bearer, path = sys.argv[1:]
req = urllib.request.Request(f"http://{addr}{path}", headers={"Authorization": f"Bearer {bearer}"})
body = json.load(urllib.request.urlopen(req))
assert body["success"] is True and body["data"]["token"].count(".") == 2, body
payload = json.loads(base64.urlsafe_b64decode(body["data"]["token"].split(".")[1] + "=="))
assert payload["fileName"] == "photo.jpg" and payload["folder"] == "/uploads/chat", payload
PY
done

run_wrk() { # ADDR BEARER -> RESULT line
  BEARER="$2" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/serve.lua \
    "http://$1$REQUEST_PATH" | grep '^RESULT'
}
hwm() { awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
median() { printf '%s\n' "$@" | sort -t= -k2 -g | sed -n "$(( ($# + 1) / 2 ))p"; }

# Warm each up, then alternate the measured rounds so that other load on the machine (these are
# shared cores) hits all alike; the median round (by requests/s) of each is reported.
for i in 0 1 2; do
  BEARER="${BEARERS[$i]}" wrk -t1 -c"$CONNECTIONS" -d2s -s bench/serve.lua "http://${ADDRS[$i]}$REQUEST_PATH" >/dev/null
done
echo "load average before measuring: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
declare -a R0 R1 R2
for round in $(seq "$ROUNDS"); do
  echo "round $round/$ROUNDS ($DURATION per server, $CONNECTIONS connections)" >&2
  R0+=("$(run_wrk "${ADDRS[0]}" "${BEARERS[0]}")")
  R1+=("$(run_wrk "${ADDRS[1]}" "${BEARERS[1]}")")
  R2+=("$(run_wrk "${ADDRS[2]}" "${BEARERS[2]}")")
done
printf 'rounds:\n' >&2
printf '  %s\n' "${R0[@]}" "${R1[@]}" "${R2[@]}" >&2
ROWS=()
for i in 0 1 2; do
  case $i in 0) set -- "${R0[@]}" ;; 1) set -- "${R1[@]}" ;; 2) set -- "${R2[@]}" ;; esac
  ROWS+=("${NAMES[$i]}|$(median "$@")|$(hwm "${SERVER_PIDS[$i]}")")
done
AUDIT_LINES=$(wc -l < "$WORK/data/serve-audit.jsonl")

python3 - "$AUDIT_LINES" "${ROWS[@]}" <<'PY'
import sys
audit, rows = sys.argv[1], sys.argv[2:]
def parse(line):
    return {k: float(v) for k, v in (f.split("=") for f in line.split()[1:])}
rows = [(name, parse(result), rss) for name, result, rss in (r.split("|") for r in rows)]
print("| server | requests/s | p50 ms | p99 ms | non-2xx | socket errors | peak RSS (VmHWM) |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for name, r, rss in rows:
    print(f"| {name} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['non2xx']:.0f} | {r['errors']:.0f} | {rss} MiB |")
dk = rows[0][1]
print()
for name, r, _ in rows[1:]:
    ratio = dk["rps"] / r["rps"]
    ok = ratio >= 5 and dk["p99_ms"] < r["p99_ms"] and dk["non2xx"] == 0
    print(f"vs {name}: {ratio:.1f}x the throughput, p99 {dk['p99_ms']:.2f} ms vs {r['p99_ms']:.2f} ms: "
          f"{'meets' if ok else 'MISSES'} the target (>= 5x at a lower p99)")
print(f"dropkey serve wrote {audit} audit lines meanwhile")
PY
