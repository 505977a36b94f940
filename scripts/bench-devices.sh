#!/usr/bin/env bash
# The device side's benchmark figures (issue 4), each beside its reference:
#   BenchmarkCheckInTLS      check-ins/s over keep-alive TLS on loopback
#                            (64 connections, 10,000 devices, real store) and
#                            the process CPU time per check-in
#   BenchmarkCheckInHandler  the check-in path without network or TLS
#   BenchmarkParseCheckIn    the message parser against encoding/xml
#   BenchmarkDownload        16 concurrent TLS downloads of 32 MiB from
#                            deviceapi and from nginx (same file, same
#                            certificate and cipher suite, each server in its
#                            own process, same run) and their ratio
#   BenchmarkIdleConnections 10,000 idle keep-alive TLS connections:
#                            the server process's heap, stack and RSS per
#                            connection
# COUNT runs each benchmark that many times (default 3); the machine's load
# average is printed first, since every figure depends on it.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-3}
bin=$(mktemp -d)/deviceapi.test
trap 'rm -rf "$(dirname "$bin")"' EXIT
go test -c -o "$bin" ./devsvc/deviceapi/
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
cd devsvc/deviceapi # the test binary expects its package directory
run() { "$bin" -test.run '^$' -test.benchmem -test.bench "$1" -test.benchtime "$2" -test.count "$3" | grep -E '^(Benchmark|FAIL|---)' || true; }
run 'BenchmarkCheckInTLS$' 5s "$count"
run 'BenchmarkCheckInHandler$|BenchmarkParseCheckIn' 2s "$count"
run 'BenchmarkDownload$' 3x "$count"
run 'BenchmarkIdleConnections$' 1x 1
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
