#!/usr/bin/env bash
# Prints the benchmark figures each issue asks for, each beside its reference
# (cabextract, nginx) measured in the same run. BENCHTIME overrides the
# default per-benchmark time; ONLY=regexp picks benchmarks by name.
set -euo pipefail
cd "$(dirname "$0")/.."
bt=${BENCHTIME:-1x}
only=${ONLY:-.}

run() { # package, benchmark regexp, benchtime
  local pkg=$1 re=$2 t=${3:-$bt}
  if ! [[ $re =~ $only || $only == . ]]; then return; fi
  echo "== $pkg $re (benchtime $t)"
  go test -run '^$' -bench "$re" -benchtime "$t" -benchmem "$pkg" | grep -E '^(Benchmark|ok|FAIL|---)' || true
}

# Issue 2: the foundation.
run ./firmware 'BenchmarkOfferDecision' 1000000x
run ./devsvc/store 'BenchmarkCheckInBatched|BenchmarkCatalogRule' 3x

# Issue 4: the device side (NTLM handshakes on new TLS connections).
run ./devsvc/ntlm 'BenchmarkHandshake|BenchmarkAuthenticate' 3s
run ./devsvc/audit 'BenchmarkMiddleware$' 2s
