#!/usr/bin/env bash
# The clock sweep (scripts/clock-sweep, issue 12): Debian's faketime (libfaketime, preloaded to shift the
# wall clock of the test processes) and a C compiler for the small preload beside it
# (scripts/faketime-monotonic.c). Run as root by scripts/setup --test. Idempotent and quick when installed.
set -euo pipefail
need=()
compgen -G "/usr/lib/*/faketime/libfaketime.so.1" >/dev/null || need+=(faketime)
command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)
if [ ${#need[@]} -gt 0 ]; then
  echo "40-clock: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
echo "40-clock: $(compgen -G "/usr/lib/*/faketime/libfaketime.so.1" | head -1), $(cc --version | head -1)" >&2
