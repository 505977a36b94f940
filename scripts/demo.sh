#!/usr/bin/env bash
# make demo: the whole product on loopback, in a temporary directory, with
# no setup. It runs devsvc init and devsvc serve on free ports, packs two
# sample firmware bundles (five phone models and a RoundTable) and imports
# them, approves some updates, marks test devices, adds accounts, then runs
# 1,000 simulated devices (on the LAN and remote, signed in and not)
# through two simulated days with device-sim, prints its report and stops
# the service cleanly. The service runs on a simulated clock that
# device-sim drives (devsvc serve --simulated-clock). Everything it writes
# goes to the temporary directory, which is removed on success and kept
# (with its logs) on failure.
#
# Expects bin/devsvc and bin/device-sim (make demo builds them first).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-bin}
DEVSVC=$BIN/devsvc
SIM=$BIN/device-sim
for b in "$DEVSVC" "$SIM"; do
	[ -x "$b" ] || { echo "demo: $b is missing: run make build (make demo does)" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/opendus-demo.XXXXXX")
log=$work/demo.log
export OPENDUS_DATA=$work/data
serve_pid=""

stop_service() {
	if [ -n "$serve_pid" ] && kill -0 "$serve_pid" 2>/dev/null; then
		kill -TERM "$serve_pid"
		local status=0
		wait "$serve_pid" || status=$?
		serve_pid=""
		return $status
	fi
}

finish() {
	local status=$?
	trap - EXIT INT TERM
	stop_service || true
	if [ "$status" -eq 0 ]; then
		rm -rf "$work"
	else
		echo "demo failed (status $status); logs and data kept in $work (see $log)" >&2
	fi
	exit "$status"
}
trap finish EXIT
trap 'exit 130' INT TERM

if [ -t 1 ]; then
	step() { printf '\033[1m==>\033[0m %s\n' "$*"; }
else
	step() { printf '==> %s\n' "$*"; }
fi
# quietly runs a command with its output in the log; on failure shows it.
quietly() {
	if ! "$@" >>"$log" 2>&1; then
		echo "demo: failed: $*" >&2
		tail -n 20 "$log" >&2
		return 1
	fi
}

step "devsvc init: data directory, private CA and certificates in $work"
quietly "$DEVSVC" init --data "$OPENDUS_DATA" --domain contoso.com

# On a simulated clock that device-sim drives (a rehearsal, on loopback):
# the service's waves, windows and back-offs pass in simulated time.
start=2026-11-23T06:00:00Z
"$DEVSVC" serve --data "$OPENDUS_DATA" --internal-addr 127.0.0.1:0 --external-addr 127.0.0.1:0 \
	--admin-addr 127.0.0.1:0 --console-addr 127.0.0.1:0 --simulated-clock "$start" >>"$work/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 1 150); do
	if "$DEVSVC" status >/dev/null 2>&1; then break; fi
	kill -0 "$serve_pid" 2>/dev/null || { echo "demo: devsvc serve exited:" >&2; tail -n 20 "$work/serve.log" >&2; exit 1; }
	sleep 0.2
done
"$DEVSVC" status >/dev/null 2>&1 || { echo "demo: devsvc serve did not come up within 30s" >&2; exit 1; }
run=$(tr -d ' \n' <"$OPENDUS_DATA/run/serve.json")
addr() { sed -E "s/.*\"$1\":\"([^\"]*)\".*/\1/" <<<"$run"; }
step "devsvc serve: LAN $(addr internal), edge $(addr external) (NTLM), admin $(addr admin)"

models=(
	UCPhone/Polycom/CX600/A/ENU
	UCPhone/Polycom/CX500/A/ENU
	UCPhone/HP/4120/A/ENU
	UCPhone/Aastra/6725ip/A/ENU
	UCPhone/LG-Nortel/8540/A/ENU
	RoundTable/Microsoft/RoundTable/A/ENU
)
old=3.5.6907.35
new=4.0.7577.4372
for v in "$old" "$new"; do
	quietly "$SIM" firmware -o "$work/tree-$v" --size 131072 "${models[@]/%/=$v}"
	if "$DEVSVC" bundle --help >/dev/null 2>&1; then
		quietly "$DEVSVC" bundle pack "$work/tree-$v" --describe -o "$work/UCUpdates-$v.cab"
		bundle=$work/UCUpdates-$v.cab
	else
		bundle=$work/tree-$v # no bundle pack in this build: import the tree
	fi
	quietly "$DEVSVC" import "$bundle"
	if [ "$v" = "$old" ]; then
		for m in "${models[@]:0:5}"; do quietly "$DEVSVC" approve "$m"; done
	fi
done
for m in "${models[@]:0:3}"; do quietly "$DEVSVC" approve "$m"; done
step "bundles packed and imported: $old approved everywhere; $new approved for CX600, CX500 and 4120,
    pending for 6725ip and 8540 (test devices only), deployed on import for the RoundTable"

cat >"$work/fleet.json" <<'EOF'
{
  "seed": 1,
  "duration": "2d",
  "accounts": 20,
  "password": "Demo-Passw0rd",
  "groups": [
    {"model": "UCPhone/Polycom/CX600/A/ENU",           "count": 300, "version": "3.5.6907.35", "signIn": 0.7, "testDevices": 5},
    {"model": "UCPhone/Polycom/CX600/A/ENU",           "count": 100, "version": "3.5.6907.35", "signIn": 0.6, "location": "external"},
    {"model": "UCPhone/Polycom/CX500/A/ENU",           "count": 150, "version": "3.5.6907.35", "signIn": 0.5},
    {"model": "UCPhone/HP/4120/A/ENU",                 "count": 150, "version": "3.5.6907.35", "signIn": 0.5},
    {"model": "UCPhone/Aastra/6725ip/A/ENU",           "count": 100, "version": "3.5.6907.35", "signIn": 0.3, "testDevices": 5},
    {"model": "UCPhone/LG-Nortel/8540/A/ENU",          "count": 100, "version": "3.5.6907.35", "signIn": 0.7, "location": "external"},
    {"model": "RoundTable/Microsoft/RoundTable/A/ENU", "count": 100, "version": "3.5.6907.35"}
  ],
  "faults": {"brokenDownload": 0.02, "corruptImage": 0.01, "powerLoss": 0.01}
}
EOF
accounts=0
for a in $("$SIM" --scenario "$work/fleet.json" --list accounts); do
	quietly "$DEVSVC" accounts add "$a" --password-stdin <<<"Demo-Passw0rd"
	accounts=$((accounts + 1))
done
tests=0
for mac in $("$SIM" --scenario "$work/fleet.json" --list test-macs); do
	quietly "$DEVSVC" testdevices add --mac "$mac" --note demo
	tests=$((tests + 1))
done
step "$accounts accounts added, $tests test devices marked"

step "device-sim: 1,000 devices through two simulated days (LAN and remote, signed in and not)"
echo
"$SIM" --data "$OPENDUS_DATA" --scenario "$work/fleet.json"
echo
stop_service
step "devsvc serve stopped cleanly; $work removed"
