#!/usr/bin/env bash
# Installs what the test suite needs on a bare Debian machine: Chromium for
# the wallboard's browser test, SIPp (sip-tester) for the SIP acceptance
# test. Idempotent; does nothing when present.
set -euo pipefail
if ! command -v sipp >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "sipp is missing and installing it needs root: run 'sudo apt-get install -y sip-tester'" >&2
    exit 1
  fi
  echo "installing Debian's sip-tester (SIPp) for the SIP acceptance test…" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq sip-tester >/dev/null
fi
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "chromium is missing and installing it needs root: run 'sudo apt-get install -y chromium'" >&2
  exit 1
fi
echo "installing Debian's chromium for the browser test…" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
