#!/usr/bin/env bash
# What the desktop bundle's build and its clean-machine test need (issue 15). Run as root by
# scripts/setup --test, after 20-docker.sh (engine running). Idempotent and quick when already there:
#   1. the two xcb libraries the Qt xcb platform plugin links and Debian's base lacks (libxcb-icccm4,
#      libxcb-keysyms1), so PyInstaller finds and bundles them: the bundle then runs on an X11 desktop
#      that has only the graphics stack;
#   2. binutils (objdump, which PyInstaller uses to read the shared libraries' dependencies on Linux);
#   3. pixel-base/desktop:bookworm, a debootstrap Debian minbase WITHOUT Python, with only what every Linux
#      desktop has and the bundle does not carry: the graphics stack (libgl1, libegl1, libxcb1) and a font.
#      The .deb's Depends are these packages, so `dpkg -i` works in it offline.
set -euo pipefail

SOCK=/var/run/docker.sock
MIRROR=${PIXEL_DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE=pixel-base/desktop:bookworm

need=()
for p in libxcb-icccm4 libxcb-keysyms1 binutils; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "55-bundle: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! docker -H "unix://$SOCK" image inspect "$BASE" >/dev/null 2>&1; then
  echo "55-bundle: building $BASE with debootstrap (about a minute)" >&2
  tmp=$(mktemp -d)
  debootstrap --variant=minbase --include=libgl1,libegl1,libxcb1,fonts-dejavu-core,fontconfig-config \
    bookworm "$tmp/rootfs" "$MIRROR" >"$tmp/debootstrap.log" 2>&1 \
    || { tail -20 "$tmp/debootstrap.log" >&2; rm -rf "$tmp"; exit 1; }
  if [ -e "$tmp/rootfs/usr/bin/python3" ]; then
    echo "55-bundle: $BASE would contain Python; refusing" >&2; rm -rf "$tmp"; exit 1
  fi
  rm -rf "$tmp"/rootfs/var/cache/apt/archives/*.deb "$tmp"/rootfs/var/cache/apt/*.bin "$tmp"/rootfs/var/lib/apt/lists/*
  tar -C "$tmp/rootfs" -c . | docker -H "unix://$SOCK" import -c 'CMD ["/bin/bash"]' -c 'ENV LANG=C.UTF-8' - "$BASE" >/dev/null
  rm -rf "$tmp"
fi
echo "55-bundle: $BASE ready" >&2
