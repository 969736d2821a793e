#!/usr/bin/env bash
# Builds satellite_<version>_<arch>.deb with dpkg-deb (no other tooling needed).
set -euo pipefail
cd "$(dirname "$0")/../.."
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
arch=$(dpkg --print-architecture)
cargo build --release --locked
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
install -D -m 0755 target/release/satellite "$root/usr/bin/satellite"
install -D -m 0755 target/release/satellite-router "$root/usr/bin/satellite-router"
install -D -m 0644 packaging/systemd/satellite.service "$root/lib/systemd/system/satellite.service"
install -D -m 0640 packaging/debian/satellite.yaml "$root/etc/satellite/satellite.yaml"
install -D -m 0644 README.md "$root/usr/share/doc/satellite/README.md"
install -d "$root/DEBIAN"
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" packaging/debian/control > "$root/DEBIAN/control"
install -m 0755 packaging/debian/postinst "$root/DEBIAN/postinst"
echo "/etc/satellite/satellite.yaml" > "$root/DEBIAN/conffiles"
dpkg-deb --root-owner-group --build "$root" "target/satellite_${version}_${arch}.deb"
echo "target/satellite_${version}_${arch}.deb"
