#!/usr/bin/env bash
# Checks that the committed tree is what the tools make of it: go mod tidy
# would change nothing, and go generate (the admin API's protobuf code)
# rewrites its files to the same bytes. Runs in make check and CI.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! out=$(go mod tidy -diff 2>&1); then
  echo "drift: go mod tidy would change go.mod/go.sum; run go mod tidy and commit:" >&2
  echo "$out" >&2
  exit 1
fi

# Fingerprint every file git tracks or sees, run go generate, and compare:
# works in a tree with uncommitted changes too.
fingerprint() {
  git ls-files -z --cached --others --exclude-standard | sort -z | xargs -0 sha256sum 2>/dev/null | sha256sum
}
if ! command -v protoc >/dev/null; then
  if [ "${CI:-}" = "true" ]; then
    echo "drift: protoc is not installed and CI=true (scripts/install-deps.sh installs protobuf-compiler)" >&2
    exit 1
  fi
  echo "drift: protoc is not installed: skipping the go generate check (install protobuf-compiler)" >&2
  exit 0
fi
before=$(fingerprint)
go generate ./...
after=$(fingerprint)
if [ "$before" != "$after" ]; then
  echo "drift: go generate changed files; commit what it generates:" >&2
  git status --short >&2
  exit 1
fi
echo "drift: go.mod, go.sum and generated code are up to date"
