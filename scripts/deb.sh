#!/usr/bin/env bash
# Builds the Debian package bin/opendus_VERSION_ARCH.deb (make deb): static
# binaries, their man pages and shell completions made by the binaries
# themselves, a changelog and a copyright file, staged under build/deb/ and
# packed by nfpm (go tool nfpm) from packaging/nfpm.yaml.
#
# VERSION (default: git describe) is what devsvc version prints; the
# package's version is made from it by scripts/debversion.sh. Prints the
# path of the package.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
# The commit's time: the package's dates (man pages, changelog) are the
# same on every build of a commit.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH
# DEB_VERSION, when set, overrides the package's version (deb-test makes an
# upgrade with it).
DEB_VERSION=${DEB_VERSION:-$(bash scripts/debversion.sh "$VERSION" "$SOURCE_DATE_EPOCH")}
DEB_MAINTAINER=${DEB_MAINTAINER:-$(git log -1 --format='%an <%ae>' 2>/dev/null)}
case $(go env GOARCH) in
  amd64) DEB_ARCH=amd64 ;;
  arm64) DEB_ARCH=arm64 ;;
  386) DEB_ARCH=i386 ;;
  arm) DEB_ARCH=armhf ;;
  ppc64le) DEB_ARCH=ppc64el ;;
  riscv64) DEB_ARCH=riscv64 ;;
  s390x) DEB_ARCH=s390x ;;
  *) echo "deb: no Debian architecture for GOARCH $(go env GOARCH)" >&2; exit 1 ;;
esac
export DEB_VERSION DEB_ARCH DEB_MAINTAINER

stage=build/deb
rm -rf "$stage"
mkdir -p "$stage/doc/docs" "$stage/doc/prometheus"

# Pure Go, so the binaries need no libc of a given version; -trimpath keeps
# the build machine's paths out.
CGO_ENABLED=0 go build -trimpath -buildvcs=auto \
  -ldflags "-s -X github.com/opendus/opendus/devsvc.version=$VERSION" \
  -o "$stage/" ./cmd/devsvc ./device-sim

"$stage/devsvc" man | gzip -9n >"$stage/devsvc.1.gz"
"$stage/device-sim" man | gzip -9n >"$stage/device-sim.1.gz"
for sh in bash zsh fish; do
  "$stage/devsvc" completion "$sh" >"$stage/completion.$sh"
done
cp README.md "$stage/doc/"
cp docs/*.md "$stage/doc/docs/"
cp packaging/prometheus/opendus-rules.yml packaging/prometheus/opendus-rules.test.yml "$stage/doc/prometheus/"

# A native package's changelog: one entry for the commit it is built from.
date=$(date -u -R -d "@$SOURCE_DATE_EPOCH")
{
  echo "opendus ($DEB_VERSION) unstable; urgency=medium"
  echo
  echo "  * Built from $VERSION ($(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown));"
  echo "    the history is the repository's (git log)."
  echo
  echo " -- $DEB_MAINTAINER  $date"
} | gzip -9n >"$stage/changelog.gz"

# license_text FILE prints a license file for the copyright file,
# indented, with the Apache-2.0 and MPL-2.0 texts (whole, or inside a file
# of several licenses) replaced by a pointer to /usr/share/common-licenses,
# where Debian keeps them (policy 12.5).
license_text() {
  if grep -q 'Mozilla Public License Version 2.0' "$1"; then
    echo "  License: MPL-2.0; see /usr/share/common-licenses/MPL-2.0"
    return
  fi
  awk '
    /^[[:space:]]*Apache License[[:space:]]*$/ && !skip {
      print "License: Apache-2.0; see /usr/share/common-licenses/Apache-2.0"; skip = 1; next
    }
    skip && /END OF TERMS AND CONDITIONS/ { skip = 0; next }
    !skip { print }
  ' "$1" | sed -e 's/[[:space:]]*$//' -e 's/^$/./' -e 's/^/  /'
}

# The copyright file: OpenDUS's, then every module linked into the
# binaries, with its license as the module ships it.
{
  echo "OpenDUS, the device update service for UC desk phones and conference units."
  echo
  echo "Copyright: the OpenDUS authors."
  echo
  if [ -f LICENSE ]; then
    sed 's/^/  /' LICENSE
  else
    echo "License: the OpenDUS authors have not published a license for OpenDUS"
    echo "(its repository has no LICENSE file yet); all rights are reserved."
  fi
  echo
  echo "The binaries are statically linked with the Go standard library and these"
  echo "modules; each one's license follows."
  echo
  echo "Go $(go env GOVERSION | sed 's/^go//'): the Go standard library"
  license_text "$(go env GOROOT)/LICENSE"
  CGO_ENABLED=0 go list -deps -f '{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}} {{.Dir}}{{end}}{{end}}' \
    ./cmd/devsvc ./device-sim | sort -u | while read -r path version dir; do
    echo
    echo "$path $version"
    lic=$(ls "$dir"/LICENSE* "$dir"/COPYING* 2>/dev/null | head -1 || true)
    if [ -z "$lic" ]; then
      echo "deb: no license file in module $path ($dir)" >&2
      exit 1
    fi
    license_text "$lic"
  done
} >"$stage/copyright"

find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
mkdir -p bin
go tool nfpm package --config packaging/nfpm.yaml --packager deb --target bin/ >&2
deb="bin/opendus_${DEB_VERSION}_${DEB_ARCH}.deb"
if [ ! -f "$deb" ]; then
  echo "deb: nfpm made no $deb" >&2
  exit 1
fi
echo "$deb"
