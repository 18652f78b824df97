#!/usr/bin/env bash
# The HTTPS edge's test parts (issue 14). Run as root by scripts/setup --test, after 20-docker.sh. Idempotent
# and quick when everything is there:
#   1. Debian's caddy and pebble (the ACME test server) packages; their services are not started;
#   2. pixel-edge/caddy:bookworm   the edge image from Debian's caddy package (packaging/edge/), on the
#      debootstrap base of 20-docker.sh (no container registry is reachable from CI);
#   3. pixel-test/pebble:bookworm  Debian's pebble binary on the same base: the tests' ACME CA.
set -euo pipefail
cd "$(dirname "$0")/../.."
SOCK=/var/run/docker.sock
BASE=pixel-base/python:bookworm
EDGE_IMAGE=pixel-edge/caddy:bookworm
PEBBLE_IMAGE=pixel-test/pebble:bookworm

need=()
command -v caddy >/dev/null 2>&1 || need+=(caddy)
command -v pebble >/dev/null 2>&1 || need+=(pebble)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
if [ ${#need[@]} -gt 0 ]; then
  echo "25-edge: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then  # keep caddy's post-install from starting a service on 80/443
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  trap '[ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

have_image() { docker -H "unix://$SOCK" image inspect "$1" >/dev/null 2>&1; }
have_image "$BASE" || { echo "25-edge: $BASE missing (run 20-docker.sh first)" >&2; exit 1; }

if ! have_image "$EDGE_IMAGE"; then
  echo "25-edge: building $EDGE_IMAGE (apt install caddy on $BASE)" >&2
  docker -H "unix://$SOCK" build -q --force-rm --build-arg "BASE=$BASE" -t "$EDGE_IMAGE" packaging/edge >/dev/null
fi

if ! have_image "$PEBBLE_IMAGE"; then
  echo "25-edge: building $PEBBLE_IMAGE" >&2
  tmp=$(mktemp -d)
  cp /usr/bin/pebble "$tmp/pebble"
  printf 'FROM %s\nCOPY pebble /usr/local/bin/pebble\nENTRYPOINT ["/usr/local/bin/pebble"]\n' "$BASE" >"$tmp/Dockerfile"
  docker -H "unix://$SOCK" build -q --force-rm -t "$PEBBLE_IMAGE" "$tmp" >/dev/null
  rm -rf "$tmp"
fi
echo "25-edge: caddy $(caddy version | head -1), images $EDGE_IMAGE $PEBBLE_IMAGE ready" >&2
