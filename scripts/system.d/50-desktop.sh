#!/usr/bin/env bash
# System packages for the desktop app tests (issue 7). Run as root by scripts/setup --test.
# Idempotent and quick when already installed:
#   - a real Secret Service for `keyring`: gnome-keyring + dbus (dbus-run-session), libsecret-tools (secret-tool);
#   - the runtime libraries PySide6's offscreen platform plugin loads (usually present already);
#   - a font, so screenshots show text.
set -euo pipefail

pkgs=(gnome-keyring dbus dbus-x11 libsecret-tools libegl1 libgl1 libxkbcommon0 libfontconfig1 libglib2.0-0
      libdbus-1-3 fonts-dejavu-core poppler-utils)
need=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "50-desktop: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
