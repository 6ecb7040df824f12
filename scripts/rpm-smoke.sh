#!/usr/bin/env bash
# Builds the release app as an .rpm (Tauri's bundler writes the rpm itself: no rpmbuild, no
# network) and installs it with rpm(8) into a throwaway root on this machine, no container:
# the package's metadata, its files (the app, the `dropkey` CLI, the desktop entry, the icons),
# that every shared library the two binaries need resolves on the host, and that the installed
# CLI runs. Then erases it and removes the root. Usage: scripts/rpm-smoke.sh [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
log() { printf '==> %s\n' "$*" >&2; }

if ! command -v rpm >/dev/null; then
  log "apt: installing rpm"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends rpm >/dev/null
fi

if [ "${1:-}" != "--no-build" ]; then
  log "release build and rpm bundle"
  cargo build --release -p dropkey
  (cd ui && TAURI_APP_PATH=../src-tauri npx tauri build --bundles rpm)
fi
RPM=$(ls -t target/release/bundle/rpm/*.rpm | head -1)
log "package: $RPM"
rpm -qip "$RPM"
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
rpm --root "$root" --initdb
# --nodeps: the host's libraries are Debian packages, unknown to this rpm database; the ldd check
# below is what proves they are there.
rpm --root "$root" -i --nodeps --noscripts "$RPM"
name=$(rpm -qp --qf '%{NAME}' "$RPM")
rpm --root "$root" -q "$name"
for f in /usr/bin/dropkey-app /usr/bin/dropkey /usr/share/applications/Dropkey.desktop; do
  [ -e "$root$f" ] || { echo "error: the rpm did not install $f; it has:" >&2; rpm -qlp "$RPM" >&2; exit 1; }
done
ls "$root"/usr/share/icons/hicolor/*/apps/ >/dev/null
for bin in dropkey-app dropkey; do
  if ldd "$root/usr/bin/$bin" | grep 'not found'; then
    echo "error: $bin needs libraries this machine lacks" >&2
    exit 1
  fi
done
grep -q '^Exec=dropkey-app' "$root/usr/share/applications/Dropkey.desktop"
"$root/usr/bin/dropkey" --version
"$root/usr/bin/dropkey" --data-dir "$root/data" sign sandbox >/dev/null
rpm --root "$root" -e "$name"
[ ! -e "$root/usr/bin/dropkey-app" ] || { echo "error: rpm -e left the app behind" >&2; exit 1; }
log "rpm smoke test passed: installed, files and libraries present, CLI ran, erased"
