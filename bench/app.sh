#!/usr/bin/env bash
# Benchmarks of the desktop app (issue 6), on the debug build the tests use unless DROPKEY_APP
# names another: cold start to first paint, idle memory (PSS of the app, WebKitWebProcess and
# WebKitNetworkProcess together), and the UI's frame time while 1,000 files upload; beside the
# idle memory, the same figure for a bare WebKitGTK window (bench/webkit-floor.py), the floor.
# Runs inside its own Xvfb, D-Bus session and gnome-keyring. Prints a Markdown table.
# Usage: bench/app.sh            (needs the app built: make app; and npm install in tests/e2e)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
APP="${DROPKEY_APP:-$PWD/target/debug/dropkey-app}"
[ -x "$APP" ] || { echo "error: $APP not found: run make app first" >&2; exit 2; }
# The floor window's GObject bindings (Debian's, for /usr/bin/python3).
if ! /usr/bin/python3 -c 'import gi; gi.require_version("WebKit2", "4.1")' 2>/dev/null; then
  echo "installing python3-gi and gir1.2-webkit2-4.1" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    python3-gi gir1.2-gtk-3.0 gir1.2-webkit2-4.1 >/dev/null
fi

if [ -z "${DROPKEY_BENCH_INNER:-}" ]; then
  exec timeout 900 xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- \
    env DROPKEY_BENCH_INNER=1 DROPKEY_APP="$APP" bash "$0" "$@"
fi
export XDG_DATA_HOME="$(mktemp -d)"
echo -n ci | gnome-keyring-daemon --unlock --components=secrets >/dev/null
RUNS="${RUNS:-5}"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The app and every process it started (WebKit's web and network processes).
tree_pids() {
  local pid=$1
  echo "$pid"
  for child in $(pgrep -P "$pid" || true); do tree_pids "$child"; done
}
pss_kib() {
  local total=0 pid kib
  for pid in $(tree_pids "$1"); do
    kib=$(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null || echo 0)
    total=$((total + ${kib:-0}))
  done
  echo "$total"
}

starts=()
idle=()
for run in $(seq "$RUNS"); do
  dir="$OUT/run$run"
  mkdir -p "$dir/data" "$dir/xdg"
  printf '[sandbox]\nlisten = "127.0.0.1:%s"\n' "$(free_port)" >"$dir/config.toml"
  log="$dir/stderr"
  t0=$(date +%s%N)
  DROPKEY_CONFIG="$dir/config.toml" DROPKEY_DATA_DIR="$dir/data" XDG_CONFIG_HOME="$dir/xdg" \
    "$APP" 2>"$log" &
  pid=$!
  while ! grep -q "first-paint" "$log" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { echo "error: the app exited: $(cat "$log")" >&2; exit 1; }
    sleep 0.01
  done
  t1=$(date +%s%N)
  starts+=($(( (t1 - t0) / 1000000 )))
  sleep 5
  idle+=($(( $(pss_kib "$pid") / 1024 )))
  kill "$pid"
  wait "$pid" 2>/dev/null || true
done

# The platform's floor: a bare WebKitGTK window with a one-line page, measured the same way
# (same window size, same WEBKIT_DISABLE_COMPOSITING_MODE as the app sets). Whatever the app
# shows cannot cost less than this.
floor=()
for run in $(seq "$RUNS"); do
  log="$OUT/floor$run.stderr"
  WEBKIT_DISABLE_COMPOSITING_MODE="${WEBKIT_DISABLE_COMPOSITING_MODE:-1}" \
    /usr/bin/python3 bench/webkit-floor.py 2>"$log" &
  pid=$!
  while ! grep -q "first-paint" "$log" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { echo "error: the WebKitGTK floor window exited: $(cat "$log")" >&2; exit 1; }
    sleep 0.01
  done
  sleep 5
  floor+=($(( $(pss_kib "$pid") / 1024 )))
  kill "$pid"
  wait "$pid" 2>/dev/null || true
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
frames="$(DROPKEY_APP="$APP" node bench/app-frames.mjs)"

echo
echo "| measure | result | target |"
echo "| --- | --- | --- |"
echo "| cold start to first paint (median of $RUNS; all: ${starts[*]} ms) | $(median "${starts[@]}") ms | < 1500 ms |"
echo "| idle PSS, app + WebKit processes (median of $RUNS; all: ${idle[*]} MiB) | $(median "${idle[@]}") MiB | < 150 MiB |"
echo "| idle PSS, a bare WebKitGTK $(pkg-config --modversion webkit2gtk-4.1 2>/dev/null) window with a one-line page (the floor; all: ${floor[*]} MiB) | $(median "${floor[@]}") MiB | |"
echo "$frames"
