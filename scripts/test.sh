#!/usr/bin/env bash
# Every test, as CI runs them: lint, UI checks and unit tests, Rust tests against a real Secret
# Service, the end-to-end test that drives the real window through WebDriver, and the browser
# test of team mode (headless Chromium against `dropkey serve`). The Rust, WebDriver and browser
# parts run inside a private X server, D-Bus session and gnome-keyring, so they touch
# nothing of the user's desktop or keyring.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
FEATURES=(--workspace --features dropkey-app/custom-protocol,dropkey/fault-points)
step() { printf '\n==> %s\n' "$*" >&2; }

step "rustfmt"
cargo fmt --all -- --check

step "the app's shell stays thin"
scripts/shell-size.sh

step "UI: type check, unit tests, build"
(cd ui && npm run --silent check && npm run --silent test && npm run --silent build)

step "clippy"
timeout 1200 cargo clippy "${FEATURES[@]}" --all-targets -- -D warnings

step "build"
timeout 1200 cargo build "${FEATURES[@]}" --all-targets

step "Rust tests and end-to-end tests (Xvfb + D-Bus + gnome-keyring)"
timeout 1200 xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- bash -euo pipefail -c '
  # A fresh keyring dir: a stale login keyring with another password would hang on a prompt.
  export XDG_DATA_HOME="$(mktemp -d)"
  echo -n ci | gnome-keyring-daemon --unlock --components=secrets >/dev/null
  export DROPKEY_REQUIRE_KEYCHAIN=1
  cargo test "$@"
  DROPKEY_APP="$PWD/target/debug/dropkey-app" node --test tests/e2e/
  DROPKEY_BIN="$PWD/target/debug/dropkey" node --test tests/browser/
  DROPKEY_BIN="$PWD/target/debug/dropkey" node --test tests/sdk/
' _ "${FEATURES[@]}"
