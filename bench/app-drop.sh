#!/usr/bin/env bash
# The app with a folder of 100,000 files dropped on it (issue 16): time to the first upload,
# frame times while the folder is queued, time to queue and to upload it all, and PSS idle
# before and after (bench/app-drop.mjs). BENCH_APP_FILES=N for another size. Runs inside its
# own Xvfb, D-Bus session and gnome-keyring; needs the app and CLI built (make app; cargo build)
# and `npm install` in tests/e2e (scripts/setup.sh does both).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
APP="${DROPKEY_APP:-$PWD/target/debug/dropkey-app}"
[ -x "$APP" ] || { echo "error: $APP not found: run make app first" >&2; exit 2; }
exec timeout 5400 xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- bash -euo pipefail -c '
  export XDG_DATA_HOME="$(mktemp -d)"
  trap "rm -rf \"$XDG_DATA_HOME\"" EXIT
  echo -n ci | gnome-keyring-daemon --unlock --components=secrets >/dev/null
  DROPKEY_APP="$1" node bench/app-drop.mjs
' _ "$APP"
