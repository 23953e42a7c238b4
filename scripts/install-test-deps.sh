#!/usr/bin/env bash
# Installs what the test suite needs on a bare Debian machine. Idempotent;
# does nothing when everything is present.
#   chromium     the wallboard's browser test
#   sip-tester   SIPp, for the SIP acceptance test
#   prometheus   its promtool checks and unit-tests deploy/prometheus rules
#   nats-server  Debian's 2.9.10: the test that a too old NATS is refused
#   nodejs, npm  the linters in tools/ (OpenAPI, compose file, Dockerfile)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/debian-install.sh

need=()     # installed as Debian recommends
tools=()    # command-line tools only, without their recommends
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v sipp >/dev/null 2>&1 || need+=(sip-tester)
command -v promtool >/dev/null 2>&1 || tools+=(prometheus)
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || tools+=(nats-server)
command -v npm >/dev/null 2>&1 || tools+=(nodejs npm)
if [ "$((${#need[@]} + ${#tools[@]}))" -gt 0 ]; then
  debian_install_begin "the test suite" "${need[@]}" "${tools[@]}"
  # Installed as tools only: no daemon is started (policy-rc.d refuses it).
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  if [ "${#need[@]}" -gt 0 ]; then
    apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  if [ "${#tools[@]}" -gt 0 ]; then
    apt-get install -y -qq --no-install-recommends "${tools[@]}" >/dev/null
  fi
fi

# The linters, pinned in tools/package-lock.json, into tools/node_modules.
if [ ! -x tools/node_modules/.bin/redocly ] || [ tools/package-lock.json -nt tools/node_modules/.package-lock.json ]; then
  echo "installing the linters of tools/package.json…" >&2
  npm ci --prefix tools --no-audit --no-fund --loglevel=error >/dev/null
fi
