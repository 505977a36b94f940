#!/usr/bin/env bash
# debversion.sh DESCRIBE EPOCH prints the Debian version of a build: DESCRIBE
# is `git describe --tags --always --dirty`, EPOCH the commit time (Unix
# seconds). A Debian version starts with a digit, has no "-" (the package
# is native: no revision), and must sort the way the builds came:
#
#   v1.2.3                -> 1.2.3
#   v1.2.3-rc1            -> 1.2.3~rc1            (before 1.2.3)
#   v1.2.3-4-gabc1234     -> 1.2.3+git20261206.021500.abc1234 (after 1.2.3)
#   abc1234 (no tag yet)  -> 0.0~git20261206.021500.abc1234
#   ...-dirty             -> ...+dirty
#
# The commit time orders builds of the same day; the hash says which.
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: debversion.sh DESCRIBE EPOCH" >&2
  exit 2
fi
d=$1
stamp=$(date -u -d "@$2" +%Y%m%d.%H%M%S)
dirty=
if [[ $d == *-dirty ]]; then
  dirty=+dirty
  d=${d%-dirty}
fi
# Release tags are vMAJOR.MINOR[.PATCH...][-PRERELEASE]; anything else
# git describe prints is a commit's abbreviated hash.
if [[ $d =~ ^v([0-9]+\.[0-9][0-9A-Za-z.]*)(-([0-9A-Za-z.]+))?-([0-9]+)-g([0-9a-f]+)$ ]]; then
  v=${BASH_REMATCH[1]}${BASH_REMATCH[3]:+~${BASH_REMATCH[3]}}+git$stamp.${BASH_REMATCH[5]}
elif [[ $d =~ ^v([0-9]+\.[0-9][0-9A-Za-z.]*)(-([0-9A-Za-z.]+))?$ ]]; then
  v=${BASH_REMATCH[1]}${BASH_REMATCH[3]:+~${BASH_REMATCH[3]}}
elif [[ $d =~ ^[0-9a-f]{4,40}$ ]]; then
  v=0.0~git$stamp.$d
else
  echo "debversion: cannot make a Debian version of \"$1\": tag releases vMAJOR.MINOR.PATCH" >&2
  exit 1
fi
echo "$v$dirty"
