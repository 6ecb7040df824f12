#!/usr/bin/env bash
# What removing metadata costs: `dropkey upload` of a 20 MB camera JPEG (Exif with GPS, a
# serial number, a copyright) to the sandbox on loopback, with `--metadata keep` (the file as it
# is) against `--metadata strip-location` and `strip-private` (the default and the stricter
# policy), interleaved, BENCH_REPS times each (default 15). Prints the median wall time and the
# largest peak RSS of each, and the difference to `keep`.
# Targets: stripping adds < 10% to the upload time and < 5 MiB of memory.
# Usage: bench/metadata.sh   (release build; needs GNU time)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
[ -x /usr/bin/time ] || { echo "installing GNU time" >&2; apt-get install -y -qq time >/dev/null; }
cargo build --release -p dropkey --quiet
cargo build --release -p dropkey-core --example camera_jpeg --quiet
DK="${CARGO_TARGET_DIR:-$PWD/target}/release/dropkey"
MAKE="${CARGO_TARGET_DIR:-$PWD/target}/release/examples/camera_jpeg"
REPS="${BENCH_REPS:-15}"

if [ -d /dev/shm ] && [ -w /dev/shm ]; then WORK="$(mktemp -d /dev/shm/dropkey-meta.XXXXXX)"
else WORK="$(mktemp -d /tmp/dropkey-meta.XXXXXX)"; fi
trap 'kill "$SANDBOX_PID" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT
export DROPKEY_SECRET_SANDBOX="private_bench_$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export DROPKEY_DATA_DIR="$WORK/data"

# 4.9 megapixels of noise at quality 100: about 20 MB, a high-quality phone photo's size.
"$MAKE" "$WORK/photo.jpg" 4.9
# The sandbox only receives (`--discard`): what is measured is the client.
"$DK" sandbox --listen 127.0.0.1:0 --root "$WORK/sandbox" --discard > "$WORK/sandbox.out" 2>"$WORK/sandbox.err" &
SANDBOX_PID=$!
for _ in $(seq 100); do [ -s "$WORK/sandbox.out" ] && break; sleep 0.1; done
ADDR=$(head -1 "$WORK/sandbox.out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["listen"])')
printf '[sandbox]\nlisten = "%s"\n' "$ADDR" > "$WORK/config.toml"

# Wall time from bash's clock (GNU time's has 10 ms steps), peak RSS from GNU time.
run() { # POLICY -> "seconds kib"
  local start=$EPOCHREALTIME
  /usr/bin/time -f "%M" -o "$WORK/time" "$DK" --config "$WORK/config.toml" upload sandbox \
    --metadata "$1" --on-duplicate upload "$WORK/photo.jpg" > "$WORK/out.json"
  local end=$EPOCHREALTIME
  grep -q '"ok":true' "$WORK/out.json" || { cat "$WORK/out.json" >&2; exit 1; }
  echo "$(python3 -c "print($end - $start)") $(cat "$WORK/time")"
}
POLICIES=(keep strip-location strip-private)
run keep >/dev/null   # warm-up: page cache, sandbox connection paths
for _ in $(seq "$REPS"); do
  for p in "${POLICIES[@]}"; do run "$p" >> "$WORK/$p.times"; done
done
python3 - "$WORK" "$(stat -c %s "$WORK/photo.jpg")" "${POLICIES[@]}" <<'PY'
import statistics, sys
work, size, policies = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
rows = {}
for p in policies:
    runs = [tuple(map(float, l.split())) for l in open(f"{work}/{p}.times")]
    rows[p] = (statistics.median(t for t, _ in runs), max(k for _, k in runs) / 1024)
base_t, base_m = rows["keep"]
print(f"camera JPEG of {size / 1e6:.1f} MB, {len(runs)} runs each, median wall time, largest peak RSS")
print(f"{'policy':16} {'time':>8} {'vs keep':>8} {'peak RSS':>9} {'vs keep':>8}")
for p, (t, m) in rows.items():
    print(f"{p:16} {t*1000:6.0f}ms {100*(t/base_t-1):+7.1f}% {m:7.1f}MiB {m-base_m:+6.1f}MiB")
PY
