#!/usr/bin/env bash
# Runs every Fuzz target of the module for a bounded time each ($1, e.g. 10s).
#
# Go's fuzzer sometimes ends a run with a bare "context deadline exceeded"
# when the time runs out while a worker is busy (no input failed, nothing
# is written to testdata). Such a run is repeated (up to 3 tries); a real finding
# ("Failing input written to …") fails at once.
set -euo pipefail
fuzztime=${1:-10s}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -hoE '^func (Fuzz[A-Za-z0-9_]+)\(' "$dir"/*_test.go 2>/dev/null | sed -E 's/^func (Fuzz[A-Za-z0-9_]+)\(/\1/' | sort -u); do
    for attempt in 1 2 3; do
      echo "fuzz $pkg $target for $fuzztime (attempt $attempt)"
      if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" 2>&1 | tee "$log"; then
        break
      fi
      if [ "$attempt" = 3 ] || grep -q "Failing input written" "$log" || ! grep -q "context deadline exceeded" "$log"; then
        exit 1
      fi
    done
  done
done
