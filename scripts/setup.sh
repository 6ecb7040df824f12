#!/usr/bin/env bash
# Installs what Dropkey needs to build, run and test, skipping whatever is already there:
# Debian packages (GTK/WebKit, the tray library, D-Bus, Xvfb, gnome-keyring, WebKitWebDriver),
# npm packages for the UI and the end-to-end tests, and tauri-driver.
# Usage: scripts/setup.sh [apt|npm|tools|all]   (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

APT_PACKAGES=(
  # build
  build-essential pkg-config libwebkit2gtk-4.1-dev libayatana-appindicator3-dev libdbus-1-dev
  # run and test headless: X server, session bus, a real Secret Service, WebDriver, screenshots
  xvfb xauth dbus-daemon dbus-x11 gnome-keyring libsecret-tools webkit2gtk-driver imagemagick
  # the end-to-end test copies paths the way a file manager does (onto the X clipboard) and
  # answers native dialogs with the keyboard
  xclip xdotool
  # the browser test of team mode (the upload-token guide's client flow in headless Chromium)
  chromium
)

log() { printf '==> %s\n' "$*" >&2; }

setup_apt() {
  local missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    log "apt: all ${#APT_PACKAGES[@]} packages present"
    return
  fi
  log "apt: installing ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

setup_npm() {
  command -v npm >/dev/null || { echo "error: npm is missing: install Node.js 20+ (apt-get install nodejs npm)" >&2; exit 2; }
  for dir in ui tests/e2e tests/browser tests/sdk; do
    # `npm ci` rejects a lock written on one platform on another; `install` honours the lock.
    log "npm: $dir"
    (cd "$dir" && npm install --no-audit --no-fund --loglevel=error)
  done
}

setup_tools() {
  if command -v tauri-driver >/dev/null; then
    log "tauri-driver: present"
  else
    log "tauri-driver: installing"
    cargo install tauri-driver --locked --quiet
  fi
}

case "${1:-all}" in
  apt) setup_apt ;;
  npm) setup_npm ;;
  tools) setup_tools ;;
  all) setup_apt; setup_npm; setup_tools ;;
  *) echo "usage: $0 [apt|npm|tools|all]" >&2; exit 2 ;;
esac
