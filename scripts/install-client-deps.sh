#!/usr/bin/env bash
# Installs what the TypeScript and Python clients' tests (make test-clients)
# need on a bare Debian machine: Node >= 20 with npm, and Debian's Python 3
# with websockets, pytest and venv (PyPI is not used). Then the TypeScript
# package's npm dependencies, into clients/typescript/node_modules, from its
# package-lock.json. Idempotent; does nothing that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/debian-install.sh

missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
/usr/bin/python3 -c 'import websockets, pytest, ensurepip' >/dev/null 2>&1 || missing+=(python3-websockets python3-pytest python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  debian_install_begin "the client tests" "${missing[@]}"
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "the TypeScript client needs Node >= 20, this machine has $(node --version); install a newer nodejs" >&2
  exit 1
fi

# npm ci only when the lock file changed since the last install.
ts=clients/typescript
if [ ! -f "$ts/node_modules/.package-lock.json" ] || [ "$ts/package-lock.json" -nt "$ts/node_modules/.package-lock.json" ]; then
  (cd "$ts" && npm ci --no-audit --no-fund --loglevel=error)
fi
