#!/usr/bin/env bash
# deb-test.sh (make deb-test; .ci/run runs it after make check) builds the
# Debian package and tries it as an admin would, for real, on this machine:
#
#   - lintian finds no error or warning in it;
#   - dpkg -i installs it: devsvc version prints the real version, the
#     opendus system user exists, /var/lib/opendus is opendus's, mode 0750;
#   - devsvc init, run as opendus, makes the data directory there;
#   - devsvc serve, as opendus with only the capability the unit grants
#     (CAP_NET_BIND_SERVICE, ambient), binds port 443; without it, it
#     fails saying which setting to change;
#   - an upgrade keeps the data directory as it was;
#   - dpkg -r keeps the data and the user; dpkg --purge keeps a data
#     directory that holds data, and removes an empty one.
#
# It needs root and dpkg, and a machine without OpenDUS installed: on a
# developer's machine that is not so it says why and skips; in CI (CI=true)
# that is a failure. Everything it installs it removes at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

skip() {
  if [ "${CI:-}" = "true" ]; then
    echo "deb-test: FAIL: $*" >&2
    exit 1
  fi
  echo "deb-test: skipped: $*" >&2
  exit 0
}
fail() {
  echo "deb-test: FAIL: $*" >&2
  exit 1
}
step() { echo "deb-test: $*"; }

[ "$(id -u)" -eq 0 ] || skip "needs root to install a package (sudo make deb-test)"
command -v dpkg >/dev/null || skip "needs dpkg (a Debian or Ubuntu machine)"
command -v lintian >/dev/null || skip "needs lintian (scripts/install-deps.sh installs it)"
command -v setpriv >/dev/null || skip "needs setpriv (util-linux)"
if dpkg-query -W -f '${Status}' opendus 2>/dev/null | grep -q 'install ok'; then
  skip "the opendus package is installed here; the test would remove it"
fi
if [ -e /var/lib/opendus ]; then
  skip "/var/lib/opendus exists; the test would use and remove it"
fi
user_existed=false
if getent passwd opendus >/dev/null; then user_existed=true; fi

pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  if dpkg-query -W -f '${Status}' opendus 2>/dev/null | grep -q 'installed\|config-files\|half'; then
    dpkg --purge opendus >/dev/null 2>&1 || true
  fi
  rm -rf /var/lib/opendus
  if [ "$user_existed" = false ] && getent passwd opendus >/dev/null; then
    userdel opendus >/dev/null 2>&1 || true
    groupdel opendus >/dev/null 2>&1 || true
  fi
  [ -n "${work:-}" ] && rm -rf "$work"
}
trap cleanup EXIT
work=$(mktemp -d)

VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
export VERSION
step "building the package for $VERSION"
deb=$(bash scripts/deb.sh 2>"$work/build.log") || { cat "$work/build.log" >&2; fail "make deb failed"; }
step "lintian $deb"
if ! lintian --fail-on error,warning "$deb" >"$work/lintian.log" 2>&1; then
  cat "$work/lintian.log" >&2
  fail "lintian reports errors or warnings"
fi
grep -v 'running with root privileges' "$work/lintian.log" || true

step "dpkg -i"
dpkg -i "$deb" >"$work/install.log" 2>&1 || { cat "$work/install.log" >&2; fail "dpkg -i failed"; }
got=$(devsvc version)
[[ $got == "devsvc $VERSION "* || $got == "devsvc $VERSION" ]] || fail "devsvc version says \"$got\", want $VERSION"
step "devsvc version: $got"
[[ $got != "devsvc dev"* ]] || fail "devsvc version says dev"
uid=$(id -u opendus) || fail "no opendus user"
[ "$uid" -lt 1000 ] || fail "opendus has UID $uid, want a system user"
[ "$(stat -c '%U:%G %a' /var/lib/opendus)" = "opendus:opendus 750" ] ||
  fail "/var/lib/opendus is $(stat -c '%U:%G %a' /var/lib/opendus), want opendus:opendus 750"
for f in /lib/systemd/system/opendus.service /usr/share/man/man1/devsvc.1.gz /usr/share/man/man1/device-sim.1.gz \
  /usr/share/bash-completion/completions/devsvc /usr/share/zsh/vendor-completions/_devsvc \
  /usr/share/fish/vendor_completions.d/devsvc.fish /usr/bin/device-sim; do
  [ -e "$f" ] || fail "the package installed no $f"
done
bash -c 'source /usr/share/bash-completion/completions/devsvc && COMP_WORDS=(devsvc ap) COMP_CWORD=1 && _devsvc && [ "${COMPREPLY[*]}" = approve ]' ||
  fail "the installed bash completion does not complete devsvc ap to approve"

step "devsvc init as opendus"
runuser -u opendus -- devsvc init --data /var/lib/opendus --domain contoso.com >"$work/init.log" 2>&1 ||
  { cat "$work/init.log" >&2; fail "devsvc init failed"; }
[ "$(stat -c %U /var/lib/opendus/devsvc.conf)" = opendus ] || fail "devsvc.conf is not opendus's"

# The unit's User= and AmbientCapabilities=CAP_NET_BIND_SERVICE, by hand.
serve=(devsvc serve --data /var/lib/opendus --internal-addr 127.0.0.1:443
  --external-addr 127.0.0.1:0 --admin-addr 127.0.0.1:0)
as_opendus=(setpriv --reuid opendus --regid opendus --init-groups)
cap=(--inh-caps +net_bind_service --ambient-caps +net_bind_service)
if ss -ltnH 'sport = :443' 2>/dev/null | grep -q .; then
  step "port 443 is in use here: not trying to bind it"
else
  # Where unprivileged users may bind low ports (some containers), the
  # capability makes no difference to show.
  if [ "$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start 2>/dev/null || echo 1024)" -gt 443 ]; then
    step "devsvc serve as opendus without CAP_NET_BIND_SERVICE: refused"
    if "${as_opendus[@]}" -- "${serve[@]}" >"$work/nocap.log" 2>&1; then
      fail "devsvc serve bound port 443 as opendus without the capability"
    fi
    grep -q 'internal listener on 127.0.0.1:443.*permission denied.*internal_addr' "$work/nocap.log" ||
      { cat "$work/nocap.log" >&2; fail "without the capability: no clear error"; }
  fi
  step "devsvc serve as opendus with CAP_NET_BIND_SERVICE"
  "${as_opendus[@]}" "${cap[@]}" -- "${serve[@]}" >"$work/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 300); do
    [ -e /var/lib/opendus/run/serve.json ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  grep -q '"internal": *"127.0.0.1:443"' /var/lib/opendus/run/serve.json 2>/dev/null ||
    { cat "$work/serve.log" >&2; kill "$pid" 2>/dev/null || true; fail "devsvc serve did not serve on 127.0.0.1:443 with the capability"; }
  devsvc --data /var/lib/opendus status >"$work/status.log" || { kill "$pid"; fail "devsvc status failed"; }
  kill -TERM "$pid"
  wait "$pid" || { cat "$work/serve.log" >&2; fail "devsvc serve did not stop cleanly on SIGTERM"; }
  pid=
  step "served on 127.0.0.1:443 as opendus and stopped cleanly"
fi

step "upgrade"
before=$(cd /var/lib/opendus && find . -type f -print0 | sort -z | xargs -0 sha256sum)
up_version="$(dpkg-deb -f "$deb" Version).1"
up=$(DEB_VERSION="$up_version" bash scripts/deb.sh 2>"$work/build2.log") || { cat "$work/build2.log" >&2; fail "building the upgrade failed"; }
dpkg -i "$up" >"$work/upgrade.log" 2>&1 || { cat "$work/upgrade.log" >&2; fail "the upgrade failed"; }
[ "$(dpkg-query -W -f '${Version}' opendus)" = "$up_version" ] || fail "after the upgrade: not $up_version"
after=$(cd /var/lib/opendus && find . -type f -print0 | sort -z | xargs -0 sha256sum)
[ "$before" = "$after" ] || fail "the upgrade changed the data directory"

step "dpkg -r keeps the data and the user"
dpkg -r opendus >"$work/remove.log" 2>&1 || { cat "$work/remove.log" >&2; fail "dpkg -r failed"; }
[ ! -e /usr/bin/devsvc ] || fail "dpkg -r left /usr/bin/devsvc"
after=$(cd /var/lib/opendus && find . -type f -print0 | sort -z | xargs -0 sha256sum)
[ "$before" = "$after" ] || fail "dpkg -r changed the data directory"
getent passwd opendus >/dev/null || fail "dpkg -r removed the opendus user"

step "dpkg --purge keeps a data directory with data"
dpkg --purge opendus >"$work/purge.log" 2>&1 || { cat "$work/purge.log" >&2; fail "dpkg --purge failed"; }
[ -f /var/lib/opendus/devsvc.conf ] || fail "dpkg --purge removed the data"
grep -q 'kept /var/lib/opendus' "$work/purge.log" || fail "dpkg --purge did not say it kept /var/lib/opendus"

step "dpkg --purge removes an empty data directory"
rm -rf /var/lib/opendus
dpkg -i "$deb" >"$work/install2.log" 2>&1 || { cat "$work/install2.log" >&2; fail "dpkg -i again failed"; }
dpkg --purge opendus >"$work/purge2.log" 2>&1 || { cat "$work/purge2.log" >&2; fail "dpkg --purge failed"; }
[ ! -e /var/lib/opendus ] || fail "dpkg --purge left an empty /var/lib/opendus"

echo "deb-test: passed"
