#!/usr/bin/env bash
# Installs what the test suite needs on a bare Debian machine. Idempotent;
# does nothing when everything is present.
#   chromium     the wallboard's browser test
#   prometheus   its promtool checks and unit-tests deploy/prometheus rules
#   nats-server  Debian's 2.9.10: the test that a too old NATS is refused
#   nodejs, npm  the linters in tools/ (OpenAPI, compose file, Dockerfile)
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || need+=(nats-server)
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing ${need[*]}; installing needs root: run 'sudo apt-get install -y ${need[*]}'" >&2
    exit 1
  fi
  echo "installing Debian's ${need[*]} for the test suite…" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Installed as tools only: no daemon is started (policy-rc.d refuses it).
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The linters, pinned in tools/package-lock.json, into tools/node_modules.
if [ ! -x tools/node_modules/.bin/redocly ] || [ tools/package-lock.json -nt tools/node_modules/.package-lock.json ]; then
  echo "installing the linters of tools/package.json…" >&2
  npm ci --prefix tools --no-audit --no-fund --loglevel=error >/dev/null
fi
