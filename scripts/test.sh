#!/usr/bin/env bash
# The one test command (README "Tests"; CI runs it too). Installs the Debian
# packages the integration tests use when they are missing (Prometheus,
# Alertmanager, Chromium, poppler-utils), then runs every test.
#
# Packages are installed without starting or enabling any system service: a
# policy-rc.d denies starts during the install, and every service unit or init
# script the new packages ship is disabled afterwards. The tests start their own
# throw-away instances on 127.0.0.1. Packages that were already installed are
# left exactly as they were.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

# install_quietly PKG...: apt-get install with service starts denied, then
# disable whatever services those packages brought.
install_quietly() {
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# written by sentinel scripts/test.sh for the duration of an install\nexit 101\n' |
      $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    created_policy=1
  fi
  echo "scripts/test.sh: installing Debian packages: $*"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@"
  [ "$created_policy" -eq 1 ] && $SUDO rm -f "$policy"

  local f name
  while read -r f; do
    name=$(basename "$f")
    case "$f" in
      */systemd/system/*.service)
        if command -v systemctl >/dev/null 2>&1; then
          $SUDO systemctl disable --quiet "$name" >/dev/null 2>&1 || true
          $SUDO systemctl stop "$name" >/dev/null 2>&1 || true
        fi
        command -v deb-systemd-helper >/dev/null 2>&1 &&
          $SUDO deb-systemd-helper disable "$name" >/dev/null 2>&1 || true
        echo "scripts/test.sh: disabled system service $name (not started)"
        ;;
      /etc/init.d/*)
        command -v update-rc.d >/dev/null 2>&1 &&
          $SUDO update-rc.d "$name" disable >/dev/null 2>&1 || true
        ;;
    esac
  done < <(dpkg -L "$@" 2>/dev/null | grep -E '(/systemd/system/[^/]+\.service|^/etc/init\.d/[^/]+)$' || true)
  echo "scripts/test.sh: installed: $*"
}

need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
# The status page tests drive headless Chromium and read its PDFs back.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v pdftotext >/dev/null 2>&1 || need+=(poppler-utils)
if [ "${#need[@]}" -gt 0 ]; then
  install_quietly "${need[@]}"
fi

cargo test --locked --no-fail-fast --all-targets "$@"
# `--all-targets` leaves the doc tests out; run them too (for a full run).
if [ "$#" -eq 0 ]; then
  cargo test --locked --no-fail-fast --doc
fi
