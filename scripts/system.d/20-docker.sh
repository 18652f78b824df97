#!/usr/bin/env bash
# Docker engine and offline image bases for the stack provisioning tests (issue 6). Run as root by
# scripts/setup --test. Idempotent and quick when everything is already there:
#   1. Debian's docker.io (engine + CLI), debootstrap, busybox-static, openssh-server (SSH remote test);
#   2. dockerd started in the background if no engine answers on /var/run/docker.sock;
#   3. two local base images, because no container registry is reachable from CI:
#      pixel-test/busybox:latest      tiny image for lifecycle tests (from busybox-static, < 1 s)
#      pixel-base/python:bookworm     Debian minbase + python3/venv (debootstrap + docker import, ~75 s)
set -euo pipefail

SOCK=/var/run/docker.sock
MIRROR=${PIXEL_DEBIAN_MIRROR:-http://deb.debian.org/debian}
PY_BASE=pixel-base/python:bookworm
BB_IMAGE=pixel-test/busybox:latest

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx httpd || need+=(busybox-static)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
  echo "20-docker: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian's package enables the ssh service; we only use sshd started by the tests on loopback.

engine_up() { docker -H "unix://$SOCK" version --format '{{.Server.Version}}' >/dev/null 2>&1; }
if ! engine_up; then
  echo "20-docker: starting dockerd" >&2
  setsid dockerd >/var/log/pixel-dockerd.log 2>&1 </dev/null &
  for _ in $(seq 1 120); do engine_up && break; sleep 0.5; done
  engine_up || { echo "20-docker: dockerd did not start, see /var/log/pixel-dockerd.log" >&2; exit 1; }
fi

have_image() { docker -H "unix://$SOCK" image inspect "$1" >/dev/null 2>&1; }

if ! have_image "$BB_IMAGE"; then
  tmp=$(mktemp -d)
  mkdir -p "$tmp/bin" "$tmp/tmp" "$tmp/etc" "$tmp/www"
  cp /bin/busybox "$tmp/bin/busybox"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$tmp/bin/$a"; done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$tmp/etc/passwd"
  echo ok >"$tmp/www/health"
  tar -C "$tmp" -c . | docker -H "unix://$SOCK" import -c 'CMD ["/bin/sh"]' -c 'ENV PATH=/bin' - "$BB_IMAGE" >/dev/null
  rm -rf "$tmp"
fi

if ! have_image "$PY_BASE"; then
  echo "20-docker: building $PY_BASE with debootstrap (about a minute)" >&2
  tmp=$(mktemp -d)
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$tmp/rootfs" "$MIRROR" >"$tmp/debootstrap.log" 2>&1 \
    || { tail -20 "$tmp/debootstrap.log" >&2; rm -rf "$tmp"; exit 1; }
  cat >"$tmp/rootfs/etc/apt/sources.list" <<SOURCES
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
SOURCES
  rm -rf "$tmp"/rootfs/var/cache/apt/archives/*.deb "$tmp"/rootfs/var/cache/apt/*.bin "$tmp"/rootfs/var/lib/apt/lists/*
  tar -C "$tmp/rootfs" -c . | docker -H "unix://$SOCK" import -c 'CMD ["/bin/bash"]' -c 'ENV LANG=C.UTF-8' - "$PY_BASE" >/dev/null
  rm -rf "$tmp"
fi
echo "20-docker: engine $(docker -H "unix://$SOCK" version --format '{{.Server.Version}}'), images $BB_IMAGE $PY_BASE ready" >&2
