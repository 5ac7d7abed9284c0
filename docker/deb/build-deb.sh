#!/usr/bin/env bash
# Builds the Debian package from a built binary with dpkg-deb (no cargo-deb, nothing compiled):
#
#   docker/deb/build-deb.sh [BINARY] [OUTDIR]     (defaults: target/release/ferroturn, target/deb)
#
# Contents: /usr/bin/ferroturn (stripped), /etc/ferroturn/turnserver.conf (a conffile, commented,
# safe), the hardened unit /lib/systemd/system/ferroturn.service (conf/ferroturn.service with
# the packaged paths and the system user ferroturn instead of DynamicUser), the man page
# ferroturn(8) made from `ferroturn --help`, README and copyright under /usr/share/doc/ferroturn.
# postinst creates the user and /etc/ferroturn/ferroturn.env with a random secret; it never
# starts the relay. Prints the path of the .deb.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BINARY=${1:-$ROOT/target/release/ferroturn}
OUT=${2:-$ROOT/target/deb}
HERE=$ROOT/docker/deb

[[ -x "$BINARY" ]] || { echo "build-deb: no binary at $BINARY (cargo build --release)" >&2; exit 1; }
command -v dpkg-deb >/dev/null || { echo "build-deb: dpkg-deb is missing" >&2; exit 1; }

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -n 1)
ARCH=$(dpkg --print-architecture)
STAGE=$(mktemp -d "${TMPDIR:-/tmp}/ferroturn-deb.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
PKG=$STAGE/ferroturn_${VERSION}_${ARCH}

install -d "$PKG/DEBIAN" "$PKG/usr/bin" "$PKG/etc/ferroturn" "$PKG/lib/systemd/system" \
    "$PKG/usr/share/man/man8" "$PKG/usr/share/doc/ferroturn"

# The release profile keeps line tables for profiling; the package ships without them.
strip --strip-all -o "$PKG/usr/bin/ferroturn" "$BINARY"
chmod 0755 "$PKG/usr/bin/ferroturn"

install -m 0644 "$HERE/turnserver.conf" "$PKG/etc/ferroturn/turnserver.conf"

# The source install's unit, adapted: packaged binary path, the package's system user.
sed -e 's|/usr/local/bin/ferroturn|/usr/bin/ferroturn|g' \
    -e 's|^DynamicUser=yes$|User=ferroturn\nGroup=ferroturn|' \
    -e 's|^Documentation=.*$|Documentation=man:ferroturn(8) file:/usr/share/doc/ferroturn/README.md|' \
    -e '/^#   install /d' -e '/^#   systemctl daemon-reload/d' \
    "$ROOT/conf/ferroturn.service" >"$PKG/lib/systemd/system/ferroturn.service"
grep -q '^User=ferroturn$' "$PKG/lib/systemd/system/ferroturn.service" ||
    { echo "build-deb: conf/ferroturn.service no longer has DynamicUser=yes to replace" >&2; exit 1; }
chmod 0644 "$PKG/lib/systemd/system/ferroturn.service"

# ferroturn(8): the --help text, which is generated from the option table.
{
    printf '.TH FERROTURN 8 "" "ferroturn %s" "System Administration"\n' "$VERSION"
    printf '.SH NAME\nferroturn \\- TURN/STUN relay, a drop-in replacement for coturn\n'
    printf '.SH SYNOPSIS\n.B ferroturn\n[\\-c FILE | \\-n] [OPTIONS]\n.br\n.B ferroturn\njitsi | admin | bench ... (each takes \\-\\-help)\n'
    printf '.SH DESCRIPTION\n.nf\n'
    # Escape troff: backslashes, and lines that start with a control character.
    "$BINARY" --help | sed -e 's/\\/\\e/g' -e 's/^\([.'"'"']\)/\\\&\1/'
    printf '.fi\n.SH FILES\n.TP\n/etc/ferroturn/turnserver.conf\nConfiguration (coturn syntax).\n'
    printf '.TP\n/etc/ferroturn/ferroturn.env\nFERROTURN_STATIC_AUTH_SECRET, read by the systemd unit.\n'
    printf '.SH SIGNALS\nSIGHUP reloads the configuration, SIGUSR1 drains (new allocations refused), SIGUSR2 reloads the TLS certificate, SIGTERM drains for drain\\-timeout seconds then exits (a second SIGTERM exits at once), SIGINT exits at once.\n'
    printf '.SH SEE ALSO\n/usr/share/doc/ferroturn/README.md, turnserver(1) for the option names it shares with coturn\n'
} | gzip -9n >"$PKG/usr/share/man/man8/ferroturn.8.gz"

install -m 0644 "$ROOT/README.md" "$PKG/usr/share/doc/ferroturn/README.md"
cat >"$PKG/usr/share/doc/ferroturn/copyright" <<COPY
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: ferroturn
Files: *
License: $(sed -n 's/^license = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -n 1)
COPY

for script in postinst prerm postrm; do
    install -m 0755 "$HERE/$script" "$PKG/DEBIAN/$script"
done
echo /etc/ferroturn/turnserver.conf >"$PKG/DEBIAN/conffiles"
SIZE=$(du -sk --exclude=DEBIAN "$PKG" | cut -f1)
cat >"$PKG/DEBIAN/control" <<CONTROL
Package: ferroturn
Version: $VERSION
Architecture: $ARCH
Maintainer: ferroturn developers <ferroturn@localhost>
Installed-Size: $SIZE
Depends: libc6, adduser
Section: net
Priority: optional
Description: TURN/STUN relay, a drop-in replacement for coturn
 ferroturn reads coturn's turnserver.conf and command line, accepts the TURN REST
 credentials Jitsi's Prosody issues, refuses private and loopback peers by default
 and exports Prometheus metrics. Includes a hardened systemd unit.
CONTROL

mkdir -p "$OUT"
DEB=$OUT/ferroturn_${VERSION}_${ARCH}.deb
dpkg-deb --root-owner-group --build "$PKG" "$DEB" >/dev/null
echo "$DEB"
