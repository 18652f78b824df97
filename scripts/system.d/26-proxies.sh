#!/usr/bin/env bash
# The reverse proxies whose first-party recipes (server/proxyrecipes.py) the tests run for real (issue 14):
# Debian's nginx, and Debian's caddy unless another step (25-edge.sh) installed it already. Run as root by
# scripts/setup --test. Idempotent and quick when installed. The packages' services are not started: the tests
# start their own nginx and caddy on free loopback ports with generated configuration.
set -euo pipefail
need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v caddy >/dev/null 2>&1 || need+=(caddy)
if [ ${#need[@]} -gt 0 ]; then
  echo "26-proxies: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  # keep the packages' post-install scripts from starting the system services on ports 80/443
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  trap '[ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
echo "26-proxies: $(/usr/sbin/nginx -v 2>&1), caddy $(caddy version 2>/dev/null | head -1)" >&2
