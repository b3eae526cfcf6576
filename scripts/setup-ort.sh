#!/usr/bin/env bash
# Installs onnxruntime-web for stressctl's `model` task: `npm pack` of the version pinned in
# scripts/onnxruntime-web.lock, its sha512 checked against the committed integrity, and only the
# files the task serves unpacked into the asset directory (default vendor/onnxruntime-web, which
# is where `[task] ort_dir` points unless set). Idempotent: when the directory already holds
# exactly those files (its SHA256SUMS checks), nothing is fetched. Runs as root or as a user.
#
#   scripts/setup-ort.sh [DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=/dev/null
. scripts/onnxruntime-web.lock
dest=${1:-vendor/onnxruntime-web}

if [ -f "$dest/SHA256SUMS" ] && [ "$(cat "$dest/VERSION" 2>/dev/null)" = "$package@$version $integrity" ] \
  && (cd "$dest" && sha256sum --quiet -c SHA256SUMS 2>/dev/null); then
  echo "setup-ort: $dest already holds $package@$version"
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup-ort: npm is missing; run as root to install it (apt-get install npm) or install it yourself" >&2
    exit 1
  fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$package@$version" >/dev/null)
tgz="$tmp/$package-$version.tgz"
got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
if [ "$got" != "$integrity" ]; then
  echo "setup-ort: $package@$version from the registry has $got, expected $integrity (scripts/onnxruntime-web.lock); nothing installed" >&2
  exit 1
fi
members=()
for f in $files; do members+=("package/$f"); done
tar -xzf "$tgz" -C "$tmp" "${members[@]}"

# replace the directory as a whole, so a half-written one is never served
mkdir -p "$(dirname "$dest")"
stage=$(mktemp -d "$(dirname "$dest")/.ort.XXXXXX")
for f in $files; do cp "$tmp/package/$f" "$stage/"; done
(cd "$stage" && sha256sum -- * > SHA256SUMS)
echo "$package@$version $integrity" > "$stage/VERSION"
chmod 755 "$stage" && chmod 644 "$stage"/*
rm -rf "$dest"
mv "$stage" "$dest"
echo "setup-ort: installed $package@$version into $dest ($(du -sh "$dest" | cut -f1))"
