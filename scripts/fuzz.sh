#!/usr/bin/env bash
# Runs every fuzz target for FUZZTIME (default 20s) each.
set -euo pipefail
t=${FUZZTIME:-20s}
for pkg in $(go list ./...); do
  for f in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    echo "== $pkg $f"
    go test -run '^$' -fuzz "^$f\$" -fuzztime "$t" "$pkg"
  done
done
