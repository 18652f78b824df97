#!/usr/bin/env bash
# Browser and Node tooling for the tracker (issue 4). Run as root by scripts/setup --test.
# Idempotent and quick when everything is already there:
#   1. Debian's chromium (driven by Playwright with executable_path=/usr/bin/chromium; never a browser download);
#   2. Node.js + npm if the machine has none (Debian's packages);
#   3. `npm ci` in tracker/ for the pinned esbuild, which the build-reproducibility test uses.
set -euo pipefail
cd "$(dirname "$0")/../.."

need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
# fonts so canvas text (a visitor-id signal) renders the same on every run
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
if [ ${#need[@]} -gt 0 ]; then
  echo "30-browser: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# node_modules is reinstalled only when the lock file changed since the last install.
stamp=tracker/node_modules/.pixel-lock-stamp
if [ ! -f "$stamp" ] || ! cmp -s tracker/package-lock.json "$stamp"; then
  echo "30-browser: npm ci in tracker/" >&2
  (cd tracker && npm ci --no-audit --no-fund --loglevel=error)
  cp tracker/package-lock.json "$stamp"
fi
echo "30-browser: $(/usr/bin/chromium --version 2>/dev/null | head -1), node $(node --version), esbuild $(tracker/node_modules/.bin/esbuild --version)" >&2
