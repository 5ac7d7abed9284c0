#!/usr/bin/env bash
# The Debian package, end to end on this machine: build it from the binary with
# docker/deb/build-deb.sh, install it with dpkg, check what it installed, run --check-config on
# the installed config and start the relay exactly as the unit would (its user, its
# EnvironmentFile, its ExecStartPre/ExecStart lines; on loopback and free ports), stop it with
# SIGTERM, then remove and purge the package.
#
#   tests/deploy/deb_package.sh [BINARY]      (default: target/release/ferroturn; needs root)
#
# Ends with `N passed, N failed`. Bounded: every step has a timeout; about 10 s in all.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BINARY=${1:-$ROOT/target/release/ferroturn}
PASSED=0
FAILED=0
ok() { PASSED=$((PASSED + 1)); echo "  ok    $1"; }
bad() { FAILED=$((FAILED + 1)); echo "  FAIL  $1${2:+: $2}"; }
check() { local name=$1; shift; if "$@" >/dev/null 2>&1; then ok "$name"; else bad "$name"; fi; }
finish() { echo "$PASSED passed, $FAILED failed"; [[ $FAILED -eq 0 ]]; exit $?; }

echo "== Debian package"
if [[ $(id -u) -ne 0 ]]; then
    bad "deb: needs root for dpkg -i (CI runs as root)"
    finish
fi
if dpkg-query -W -f='${Status}' ferroturn 2>/dev/null | grep -q "installed"; then
    # Never replace or remove an operator's real installation.
    bad "deb: a ferroturn package is already installed here; not touching it"
    finish
fi
for tool in dpkg-deb strip gzip readelf python3 setpriv; do
    command -v "$tool" >/dev/null || { bad "deb: $tool is missing"; finish; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ferroturn-debtest.XXXXXX")
PID=""
cleanup() {
    [[ -n "$PID" ]] && kill -KILL "$PID" 2>/dev/null
    if dpkg-query -W ferroturn >/dev/null 2>&1; then
        timeout 60 dpkg --purge ferroturn >/dev/null 2>&1
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

DEB=$(timeout 60 bash "$ROOT/docker/deb/build-deb.sh" "$BINARY" "$WORK/out") || { bad "deb: build-deb.sh builds the package"; finish; }
ok "deb: build-deb.sh builds $(basename "$DEB")"
LIST=$(dpkg-deb -c "$DEB")
for path in ./usr/bin/ferroturn ./etc/ferroturn/turnserver.conf ./lib/systemd/system/ferroturn.service \
    ./usr/share/man/man8/ferroturn.8.gz ./usr/share/doc/ferroturn/README.md ./usr/share/doc/ferroturn/copyright; do
    if grep -q " $path\$" <<<"$LIST"; then ok "deb: contains $path"; else bad "deb: contains $path"; fi
done
check "deb: /etc/ferroturn/turnserver.conf is a conffile" \
    bash -c "dpkg-deb --ctrl-tarfile '$DEB' | tar -xO ./conffiles | grep -qx /etc/ferroturn/turnserver.conf"

timeout 120 dpkg -i "$DEB" >"$WORK/dpkg-i.log" 2>&1 || { bad "deb: dpkg -i" "$(tail -5 "$WORK/dpkg-i.log")"; finish; }
ok "deb: dpkg -i installs it"
check "deb: installed binary is stripped (no symbol table, no DWARF)" \
    bash -c "! readelf -SW /usr/bin/ferroturn | grep -qE ' \.(symtab|debug_info|debug_line) '"
check "deb: system user and group ferroturn, no login shell" \
    bash -c "getent passwd ferroturn | grep -qE ':/usr/sbin/nologin$|:/bin/false$' && getent group ferroturn"
ENV_FILE=/etc/ferroturn/ferroturn.env
check "deb: $ENV_FILE is 0640 root:ferroturn with a generated 64-hex secret" \
    bash -c "[[ \$(stat -c '%a %U %G' $ENV_FILE) == '640 root ferroturn' ]] && grep -qE '^FERROTURN_STATIC_AUTH_SECRET=[0-9a-f]{64}$' $ENV_FILE"
check "deb: man page ferroturn(8) holds the --help option list" \
    bash -c "zcat /usr/share/man/man8/ferroturn.8.gz | grep -q -- '--listening-port' && zcat /usr/share/man/man8/ferroturn.8.gz | grep -q '^.SH SIGNALS'"
if command -v groff >/dev/null; then
    check "deb: man page renders without groff warnings" \
        bash -c "zcat /usr/share/man/man8/ferroturn.8.gz | groff -man -Tutf8 -ww -z 2>&1 | (! grep -q .)"
fi
UNIT=/lib/systemd/system/ferroturn.service
check "deb: unit runs as User=ferroturn with /usr/bin/ferroturn and ferroturn's docs" \
    bash -c "grep -qx 'User=ferroturn' $UNIT && grep -q '^ExecStart=/usr/bin/ferroturn ' $UNIT && grep -q '^Documentation=man:ferroturn(8)' $UNIT && ! grep -q 'DynamicUser' $UNIT"
if command -v systemd-analyze >/dev/null; then
    check "deb: systemd-analyze verify accepts the installed unit" \
        bash -c "out=\$(timeout 60 systemd-analyze verify $UNIT 2>&1); [[ -z \"\$out\" ]]"
fi

# The unit's own command lines, run as its user with its environment file.
unit_line() { sed -n "s/^$1=//p" "$UNIT" | head -n 1; }
read -r -a PRE <<<"$(unit_line ExecStartPre)"
read -r -a START <<<"$(unit_line ExecStart)"
# setpriv execs (no process in between), like systemd's User=/Group=.
as_unit() {
    set -a
    # shellcheck disable=SC1090
    . "$ENV_FILE"
    set +a
    exec setpriv --reuid=ferroturn --regid=ferroturn --init-groups -- "$@"
}
if out=$( (as_unit timeout 20 "${PRE[@]}") 2>&1); then
    ok "deb: ExecStartPre (--check-config) accepts the installed config"
else
    bad "deb: ExecStartPre (--check-config) accepts the installed config" "$out"
fi

# Loopback and free ports (below the relay range) instead of every address and 3478/9641.
read -r LISTEN METRICS < <(python3 - <<'PY'
import socket
def free():
    for port in range(20000, 32000, 7):
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, socket.socket() as t:
                u.bind(("127.0.0.1", port)); t.bind(("127.0.0.1", port))
            yield port
        except OSError:
            pass
ports = free()
print(next(ports), next(ports))
PY
)
(as_unit "${START[@]}" --listening-ip 127.0.0.1 --relay-ip 127.0.0.1 --listening-port "$LISTEN" \
    --prometheus-port "$METRICS") >"$WORK/relay.log" 2>&1 &
PID=$!
if python3 - "$ROOT/tests/deploy" "$LISTEN" "$METRICS" <<'PY'
import sys, time, urllib.request
sys.path.insert(0, sys.argv[1])
from lib import stun_binding
ok, detail = stun_binding(int(sys.argv[2]), timeout=5.0)
if not ok:
    sys.exit(f"no STUN answer: {detail}")
deadline = time.monotonic() + 5
while True:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[3]}/readyz", timeout=1) as r:
            sys.exit(0 if r.status == 200 else f"/readyz {r.status}")
    except OSError as e:
        if time.monotonic() > deadline:
            sys.exit(f"/readyz: {e}")
        time.sleep(0.1)
PY
then
    ok "deb: ExecStart as user ferroturn answers STUN and /readyz"
else
    bad "deb: ExecStart as user ferroturn answers STUN and /readyz" "$(tail -5 "$WORK/relay.log")"
fi
check "deb: the relay runs as user ferroturn" bash -c "[[ \$(ps -o user= -p $PID | tr -d ' ') == ferroturn ]]"
kill -TERM "$PID" 2>/dev/null
# No allocations: the SIGTERM drain ends at once. Bounded wait, then SIGKILL.
for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.2; done
if kill -0 "$PID" 2>/dev/null; then
    kill -KILL "$PID"
    wait "$PID" 2>/dev/null
    bad "deb: SIGTERM stops it with exit 0" "still running after 10 s"
elif wait "$PID"; then
    ok "deb: SIGTERM stops it with exit 0"
else
    bad "deb: SIGTERM stops it with exit 0" "$(tail -5 "$WORK/relay.log")"
fi
PID=""

timeout 60 dpkg -r ferroturn >"$WORK/dpkg-r.log" 2>&1 && ok "deb: dpkg -r removes it" || bad "deb: dpkg -r removes it" "$(tail -5 "$WORK/dpkg-r.log")"
check "deb: after -r the binary is gone and the edited config stays" \
    bash -c "[[ ! -e /usr/bin/ferroturn && -e /etc/ferroturn/turnserver.conf ]]"
timeout 60 dpkg --purge ferroturn >/dev/null 2>&1
check "deb: --purge removes /etc/ferroturn and the user" \
    bash -c "[[ ! -e /etc/ferroturn ]] && ! getent passwd ferroturn"
finish
