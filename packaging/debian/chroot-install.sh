#!/usr/bin/env bash
# Installs the .deb for real in a Debian chroot and starts the installed
# service the way its unit does: as the unprivileged `satellite` user with
# only CAP_NET_BIND_SERVICE, from /var/lib/satellite. Then checks that it
# listens on 443 and answers, and purges the package again.
#
#   packaging/debian/chroot-install.sh              # build.sh, then install what it built
#   packaging/debian/chroot-install.sh FILE.deb     # install that package
#   SATELLITE_CHROOT=DIR ...                        # chroot folder (default /var/tmp/satellite-chroot)
#   SATELLITE_MIRROR=URL ...                        # Debian mirror for debootstrap
#
# Needs root, debootstrap (apt install debootstrap) and, the first time, a
# Debian mirror: the chroot (bookworm, minbase, about 250 MB) is made once
# and reused. systemd does not run in a chroot, so the script does what it
# would: StateDirectory= (the folder, owned by the user, 0750), User=,
# AmbientCapabilities= and NoNewPrivileges= (setpriv). The unit itself is
# checked with `systemd-analyze verify` and `security --offline` inside
# the chroot. Port 443 and 8443 on this host must be free (a chroot shares
# the host's network).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "needs root (chroot, mount)" >&2; exit 1; }

root="${SATELLITE_CHROOT:-/var/tmp/satellite-chroot}"
mirror="${SATELLITE_MIRROR:-http://deb.debian.org/debian}"
step() { printf '\n== %s\n' "$*"; }
in_root() { chroot "$root" "$@"; }

deb="${1:-}"
if [ -z "$deb" ]; then
  step "building the package"
  deb=$(packaging/debian/build.sh | tail -1)
fi
[ -f "$deb" ] || { echo "no package at $deb" >&2; exit 1; }

# The package's dependencies come with the chroot, so `dpkg -i` needs no
# network; curl, procps and iproute2 for the checks.
needed="systemd adduser libssl3 libsqlite3-0 curl ca-certificates procps iproute2"
if [ ! -x "$root/usr/bin/apt-get" ]; then
  step "debootstrap bookworm into $root"
  command -v debootstrap >/dev/null || { echo "install debootstrap first: apt install debootstrap" >&2; exit 1; }
  debootstrap --variant=minbase --include="$(tr ' ' , <<<"$needed")" bookworm "$root" "$mirror" >/dev/null
fi

mounted=()
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
for fs in proc sys dev; do
  mountpoint -q "$root/$fs" || { mount --bind "/$fs" "$root/$fs"; mounted+=("$root/$fs"); }
done

# shellcheck disable=SC2086
in_root dpkg -s $needed >/dev/null 2>&1 || {
  step "apt-get install $needed (in the chroot)"
  in_root apt-get update -qq && in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $needed >/dev/null
}

step "dpkg -i $(basename "$deb")"
in_root dpkg --purge satellite >/dev/null 2>&1 || true
rm -rf "$root/var/lib/satellite"
cp "$deb" "$root/tmp/satellite.deb"
in_root dpkg -i /tmp/satellite.deb

fail() { echo "FAILED: $*" >&2; exit 1; }
step "what the package installed"
user=$(in_root getent passwd satellite) || fail "no satellite user"
echo "user:      $user"
IFS=: read -r _ _ uid _ _ home shell <<<"$user"
[ "$uid" -lt 1000 ] || fail "satellite is not a system user (uid $uid)"
[ "$shell" = /usr/sbin/nologin ] || fail "the satellite user has a login shell ($shell)"
[ "$home" = /var/lib/satellite ] || fail "home is $home"
group=$(in_root getent group satellite) || fail "no satellite group"
echo "group:     $group"
for f in /usr/bin/satellite /usr/bin/satellite-router /etc/satellite/satellite.yaml /lib/systemd/system/satellite.service; do
  printf '%-40s %s\n' "$f" "$(in_root stat -c '%A %U:%G' "$f")"
done
[ "$(in_root stat -c '%a %U:%G' /etc/satellite/satellite.yaml)" = "640 root:satellite" ] \
  || fail "the configuration is not 0640 root:satellite"
in_root dpkg-query -W -f='${Conffiles}\n' satellite | grep -q /etc/satellite/satellite.yaml \
  || fail "satellite.yaml is not a conffile"
echo "conffile:  $(in_root dpkg-query -W -f='${Conffiles}' satellite | xargs)"
enabled=$(in_root systemctl is-enabled satellite.service 2>/dev/null || true)
echo "enabled:   $enabled (started at the next boot: systemd does not run in a chroot)"
[ "$enabled" = enabled ] || fail "the service is not enabled"

step "systemd-analyze verify"
in_root systemd-analyze verify /lib/systemd/system/satellite.service || fail "the unit does not verify"
echo "ok"
step "systemd-analyze security --offline"
in_root systemd-analyze security --offline=yes /lib/systemd/system/satellite.service | tail -1
score=$(in_root systemd-analyze security --offline=yes /lib/systemd/system/satellite.service \
  | sed -n 's/.*exposure level for satellite.service: \([0-9.]*\).*/\1/p')
awk -v s="$score" 'BEGIN { exit !(s < 2.5) }' || fail "exposure $score is not under 2.5"

step "start it as the unit does (user satellite, CAP_NET_BIND_SERVICE only)"
# StateDirectory=satellite, StateDirectoryMode=0750: made by systemd, owned by the user.
install -d -m 0750 -o "$uid" -g "$(cut -d: -f3 <<<"$group")" "$root/var/lib/satellite"
log="$root/tmp/satellite-serve.log"
chroot "$root" /bin/sh -c 'cd /var/lib/satellite && umask 0077 && exec setpriv --reuid satellite --regid satellite --init-groups \
  --inh-caps=-all,+net_bind_service --ambient-caps=-all,+net_bind_service --bounding-set=-all,+net_bind_service \
  --no-new-privs /usr/bin/satellite -c /etc/satellite/satellite.yaml serve' >"$log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
  in_root curl -sk --max-time 1 https://127.0.0.1:8443/healthz >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat "$log"; fail "the server exited"; }
  sleep 0.2
done
pid=$server  # chroot, sh and setpriv each exec the next
echo "process:   $(in_root ps -o user=,uid=,pid=,args= -p "$pid")"
grep -E '^Cap(Eff|Prm|Amb|Bnd)' "/proc/$pid/status" | sed 's/^/           /'
echo "listening:"
ss -ltnp | grep "pid=$pid," | awk '{print "           " $4}'
ss -ltnp | grep "pid=$pid," | grep -q ':443 ' || fail "not listening on 443"
echo "GET https://127.0.0.1:8443/healthz -> $(in_root curl -sk --max-time 5 -w ' (HTTP %{http_code})' https://127.0.0.1:8443/healthz)"
answer=$(in_root curl -s --max-time 5 --cacert /var/lib/satellite/data/ca.pem -w ' (HTTP %{http_code})' \
  -H 'content-type: application/json' -d '{}' https://127.0.0.1:443/SmartTransport)
echo "POST https://127.0.0.1:443/SmartTransport {} -> $answer"
grep -q '(HTTP 400)' <<<"$answer" || fail "the device listener did not answer on 443"
echo "data dir:  $(in_root stat -c '%A %U:%G' /var/lib/satellite/data) /var/lib/satellite/data"
in_root ls -l /var/lib/satellite/data | sed 's/^/           /'
echo "log:"
sed 's/^/           /' "$log" | head -20

step "remove, then install again from the config-files state"
kill "$server"; wait "$server" 2>/dev/null || true; server=""
in_root dpkg --remove satellite >/dev/null
[ ! -e "$root/etc/systemd/system/multi-user.target.wants/satellite.service" ] \
  || fail "remove left the multi-user.target.wants link"
echo "removed:   no multi-user.target.wants link left"
in_root dpkg -i /tmp/satellite.deb >/dev/null
enabled=$(in_root systemctl is-enabled satellite.service 2>/dev/null || true)
[ "$enabled" = enabled ] || fail "installed again after remove, the service is $enabled"
echo "again:     $enabled"

step "purge"
in_root dpkg --purge satellite >/dev/null
[ ! -e "$root/etc/satellite" ] || fail "purge left /etc/satellite: $(ls -A "$root/etc/satellite")"
echo "purged; /var/lib/satellite is kept by design: $(in_root ls /var/lib/satellite | xargs)"
echo
echo "chroot install: OK"
