#!/usr/bin/env bash
# Builds satellite_<version>_<arch>.deb with dpkg-deb and checks its contents.
#
#   packaging/debian/build.sh            # cargo build --release (incremental), then package
#   SATELLITE_BIN_DIR=DIR build.sh       # package the binaries already in DIR
#   SATELLITE_DEB_OUT=DIR build.sh       # write the .deb into DIR (default: target/)
#   SATELLITE_DEB_COMPRESSION=none       # dpkg-deb -Z (default xz; tests skip compressing)
#
# Install: apt install ./target/satellite_<version>_<arch>.deb
# (creates the satellite user, enables and starts satellite.service on 443).
set -euo pipefail
cd "$(dirname "$0")/../.."
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
arch=$(dpkg --print-architecture)
target_dir="${CARGO_TARGET_DIR:-target}"
if [ -z "${SATELLITE_BIN_DIR:-}" ]; then
  # Incremental: cargo rebuilds only what changed.
  cargo build --release --locked --bins
  SATELLITE_BIN_DIR="$target_dir/release"
fi
out="${SATELLITE_DEB_OUT:-$target_dir}"
mkdir -p "$out"
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
# Stripped (install -s): the release profile keeps line tables for perf,
# which made the package 182 MB instead of about 15.
install -D -s -m 0755 "$SATELLITE_BIN_DIR/satellite" "$root/usr/bin/satellite"
install -D -s -m 0755 "$SATELLITE_BIN_DIR/satellite-router" "$root/usr/bin/satellite-router"
install -D -m 0644 packaging/systemd/satellite.service "$root/lib/systemd/system/satellite.service"
install -D -m 0640 packaging/debian/satellite.yaml "$root/etc/satellite/satellite.yaml"
install -D -m 0644 README.md "$root/usr/share/doc/satellite/README.md"
install -D -m 0644 packaging/debian/copyright "$root/usr/share/doc/satellite/copyright"
install -d "$root/DEBIAN"
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" packaging/debian/control > "$root/DEBIAN/control"
for script in postinst prerm postrm; do
  install -m 0755 "packaging/debian/$script" "$root/DEBIAN/$script"
done
echo "/etc/satellite/satellite.yaml" > "$root/DEBIAN/conffiles"
deb="$out/satellite_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Z"${SATELLITE_DEB_COMPRESSION:-xz}" --build "$root" "$deb" >/dev/null

# Check what was built: the files, the conffile, the dependencies, the scripts.
contents=$(dpkg-deb -c "$deb")
for path in ./usr/bin/satellite ./usr/bin/satellite-router ./lib/systemd/system/satellite.service \
            ./etc/satellite/satellite.yaml ./usr/share/doc/satellite/README.md \
            ./usr/share/doc/satellite/copyright; do
  grep -q " $path\$" <<<"$contents" || { echo "missing from the package: $path" >&2; exit 1; }
done
dpkg-deb -f "$deb" Depends | grep -q adduser || { echo "Depends lacks adduser" >&2; exit 1; }
dpkg-deb -I "$deb" conffiles | grep -qx /etc/satellite/satellite.yaml \
  || { echo "satellite.yaml is not a conffile" >&2; exit 1; }
dpkg-deb -I "$deb" postinst | grep -q "enable --now satellite.service" \
  || { echo "postinst does not enable the service" >&2; exit 1; }
echo "$deb"
