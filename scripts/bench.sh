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
# Issue 12: the check-in decision with a rollout, 200 sites and windows,
# beside BenchmarkOfferDecision (the decision without them) in the same run.
run ./firmware 'BenchmarkOfferDecision|BenchmarkCheckInDecision' 1000000x
# The same through the device handler's decision over a real store (the
# fleet index, the catalog, the site lookup), beside its plain offer.
run ./devsvc/deviceapi 'BenchmarkCheckInDecision' 1000000x
run ./devsvc/store 'BenchmarkCheckInBatched|BenchmarkCatalogRule' 3x

# Issue 3: cabinets, side by side with cabextract (OPENDUS_CAB_BENCH_MB sets
# the data size, 200 MB by default), and the LZX codec alone.
run ./cabingest/cabcli 'BenchmarkSpawnFloor|BenchmarkExtractMSZIP|BenchmarkExtractLZX21|BenchmarkPackLZX21' 3x
run ./cabingest/lzx 'BenchmarkEncode|BenchmarkDecode' 3x
run ./cabingest 'BenchmarkImport' 4x

# Issue 4: the device side: check-ins over keep-alive TLS, downloads with 16
# clients beside nginx serving the same file, 10,000 idle connections, NTLM
# handshakes on new TLS connections, the audit log.
# Issue 16: each with metrics=off and metrics=on (the Prometheus metrics'
# cost; at most 3% allowed).
run ./devsvc/deviceapi 'BenchmarkCheckInTLS$' 5s
run ./devsvc/deviceapi 'BenchmarkDownload$|BenchmarkIdleConnections' 1x
run ./ntlm 'BenchmarkHandshake|BenchmarkAuthenticate' 3s
run ./devsvc/audit 'BenchmarkMiddleware$' 2s

# Issue 15: signed update metadata. A device's check-in over TLS that
# believes the answer (plain, the reference) beside one that verifies (an
# unchanged timestamp; after a catalog change), against 50 rules; the
# primary's signing per catalog change; the device-side verification alone.
run ./devsvc/signer 'BenchmarkCheckIn|BenchmarkSign' 200x
run ./updatemeta 'BenchmarkRefresh|BenchmarkPublish' 200x
run ./e2e 'BenchmarkFleetVerify' 1x

# Issue 6: the fleet simulator (10,000 devices, two simulated days).
run ./e2e 'BenchmarkFleet$' 1x
# Issue 12: 100,000 devices in 200 sites through a three-wave rollout over
# two simulated days, beside a plain approve of the same fleet, and the
# devices --site S --state failed query against that inventory.
run ./e2e 'BenchmarkRolloutFleet' 1x
# Issue 14: replicas. What a release costs the WAN per site (bytes the
# primary sends a replica, on the wire, against the update's size), how
# fast a replica catches up with 10,000 changes, and device-sim with
# 10,000 devices in 20 sites behind 4 replicas.
run ./e2e 'BenchmarkReplicaRelease' 3x
run ./devsvc/adminapi 'BenchmarkCatchUp' 3x
run ./e2e 'BenchmarkReplicaFleet' 1x
