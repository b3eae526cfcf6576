#!/usr/bin/env bash
# Installs what a local Selenium Grid 4 needs (scripts/grid.sh): Java 17 (Debian's
# openjdk-17-jre-headless) and the Selenium server jar, taken from the npm package
# @nightwatch/selenium-server (which ships selenium-server-<version>.jar) with `npm pack`, its
# sha512 checked against the value committed below, and the jar extracted to vendor/selenium/
# (gitignored). Idempotent: re-running it only does what is missing. Runs as root for apt-get.
# Never called at run time: stressctl and grid.sh never download anything.
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned: 4.20.0 ships selenium-server-4.20.0.jar (Selenium Grid 4). Checksum of the npm tarball
# (the registry's `dist.integrity`, as hex).
package=@nightwatch/selenium-server
version=4.20.0
sha512=402ced106782dac775837294ee0b8b5b66b5678c02d41942265f4ff40bf742d7f3238f8403b2ca8431616be091c6cc261c75b4410b5823dcf4119f1848334c64
dest=vendor/selenium
jar="$dest/selenium-server-$version.jar"

if ! command -v java >/dev/null 2>&1 || ! java -version 2>&1 | grep -qE 'version "(1[7-9]|[2-9][0-9])'; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup-grid: need root to apt-get install openjdk-17-jre-headless (run as root or with sudo)" >&2
    exit 1
  fi
  echo "setup-grid: installing openjdk-17-jre-headless (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless >/dev/null
fi
echo "setup-grid: $(java -version 2>&1 | head -1)"

if [ -f "$jar" ] && [ -f "$dest/SHA512" ] && [ "$(cat "$dest/SHA512")" = "$sha512" ]; then
  echo "setup-grid: $jar present ($package@$version)"
  exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "setup-grid: needs npm to fetch $package (apt-get install npm)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "setup-grid: fetching $package@$version (npm pack)"
(cd "$tmp" && npm pack --silent "$package@$version" >/dev/null)
tgz="$tmp/nightwatch-selenium-server-$version.tgz"
got=$(sha512sum "$tgz" | cut -d' ' -f1)
if [ "$got" != "$sha512" ]; then
  echo "setup-grid: $package@$version from the registry has sha512 $got, expected $sha512; not installing it" >&2
  exit 1
fi
tar -xzf "$tgz" -C "$tmp" "package/lib/selenium-server-$version.jar"
mkdir -p "$dest"
mv "$tmp/package/lib/selenium-server-$version.jar" "$jar"
echo "$sha512" > "$dest/SHA512"
echo "setup-grid: $jar installed ($package@$version, sha512 verified)"
