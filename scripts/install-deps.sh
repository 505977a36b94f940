#!/usr/bin/env bash
# Installs the Debian packages that the OpenDUS tests use as independent
# checks and real peers: cabextract and gcab (cabinet reference tools), curl
# (a real NTLM client), slapd and ldap-utils (a real LDAP directory), rpm
# (rpmbuild for RPM import tests), nginx (the download benchmark reference),
# protobuf-compiler and libprotobuf-dev (regenerate the admin API code),
# systemd (systemd-analyze checks the unit), lintian (checks the Debian
# package), groff-base (renders the man pages), zsh and fish (run the
# completion scripts), prometheus (promtool checks the metrics and the
# rules; a real Prometheus server scrapes the service), argon2 (the
# reference argon2id, checks the console's password hashes) and chromium
# (the browser the console's browser tests drive, headless).
#
# Safe to run again: it installs only what is missing. Needs root (CI is).
set -euo pipefail

pkgs=(cabextract gcab curl slapd ldap-utils rpm nginx-light protobuf-compiler libprotobuf-dev systemd lintian groff-base zsh fish argon2 chromium prometheus)
bins=(cabextract gcab curl slapd ldapadd rpmbuild nginx protoc /usr/include/google/protobuf/timestamp.proto systemd-analyze lintian groff zsh fish argon2 chromium promtool)

missing=()
for i in "${!pkgs[@]}"; do
  b=${bins[$i]}
  if [[ $b == /* ]]; then
    [ -e "$b" ] || missing+=("${pkgs[$i]}")
    continue
  fi
  if ! command -v "$b" >/dev/null 2>&1 && ! [ -x "/usr/sbin/$b" ]; then
    missing+=("${pkgs[$i]}")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: need root to install: ${missing[*]}" >&2
  echo "install-deps: run: sudo apt-get install ${missing[*]}" >&2
  # On a developer's machine the tests that need these tools skip, saying so;
  # in CI they must be there.
  if [ "${CI:-}" = "true" ]; then exit 1; fi
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# slapd's and prometheus' package scripts would start system daemons; the
# tests start their own on loopback, so keep the system ones from starting.
printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
chmod +x /usr/sbin/policy-rc.d
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
rm -f /usr/sbin/policy-rc.d
