#!/usr/bin/env bash
# Real WebRTC through ferroturn: headless Chromium opens two RTCPeerConnections
# in one page, both with iceTransportPolicy "relay", and sends numbered
# messages both ways over a data channel. One scenario per way of reaching the
# TURN server:
#
#   udp        turn:127.0.0.1:P?transport=udp
#   tcp        turn:127.0.0.1:P?transport=tcp
#   tls        turns:localhost:PT?transport=tcp       (tls-listening-port)
#   tls-plain  turns:localhost:P?transport=tcp        (TLS recognised on the plain port)
#
# A scenario passes when every message arrives in order both ways within the
# bounded wait, getStats() shows a selected pair of relay candidates on both
# sides whose addresses ferroturn logged as `relayed=` (127.0.0.1, a port in
# the relay range), and ferroturn logged the expected transport for them.
#
#   tests/e2e/webrtc/run.sh FERROTURN_BIN
#
# Installs Debian's chromium and libnss3-tools (certutil) when missing. The
# self-signed certificate is trusted through an NSS database in a throw-away
# HOME given to Chromium only, so certificate checking stays on.
# Environment: WEBRTC_TIMEOUT (seconds per scenario in the page, default 20),
# WEBRTC_MESSAGES (per direction, default 20), E2E_KEEP=1 keeps the work dir,
# E2E_RESULT_FILE receives "PASSED FAILED" (as for tests/e2e/uclient.sh).
#
# Only loopback addresses are used; every wait is bounded; everything started
# here is stopped on exit. Ends with the line `N passed, N failed`.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib.sh
source "$HERE/../lib.sh"

BIN=${1:-}
[[ -n "$BIN" && -x "$BIN" ]] || e2e_die "usage: $0 FERROTURN_BIN (an executable ferroturn)"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

TIMEOUT=${WEBRTC_TIMEOUT:-20}
MESSAGES=${WEBRTC_MESSAGES:-20}
# The page gives up after TIMEOUT; the script waits a little longer for its report.
WAIT=$((TIMEOUT + 15))

as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        e2e_die "need root (or sudo) to run: $*"
    fi
}

ensure_tools() {
    local need=()
    chromium_path >/dev/null || need+=(chromium)
    command -v certutil >/dev/null 2>&1 || need+=(libnss3-tools)
    command -v openssl >/dev/null 2>&1 || need+=(openssl)
    command -v python3 >/dev/null 2>&1 || need+=(python3)
    command -v timeout >/dev/null 2>&1 || need+=(coreutils)
    if ((${#need[@]} > 0)); then
        command -v apt-get >/dev/null 2>&1 || e2e_die "apt-get not found; install these by hand: ${need[*]}"
        e2e_log "installing ${need[*]}"
        as_root apt-get update >&2
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}" >&2
    fi
    chromium_path >/dev/null || e2e_die "chromium still missing after install"
}

ensure_tools
CHROMIUM=$(chromium_path)

# lib.sh's e2e_init insists on coturn's tools, which this test does not use.
E2E_DIR=$(mktemp -d "${TMPDIR:-/tmp}/ferroturn-webrtc.XXXXXX")
trap e2e_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
e2e_log "work dir: $E2E_DIR; $("$CHROMIUM" --version 2>/dev/null || echo chromium)"

# --- certificate, trusted by Chromium through an NSS db in its own HOME -----
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -sha256 \
    -keyout "$E2E_DIR/key.pem" -out "$E2E_DIR/cert.pem" \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 >/dev/null 2>&1 ||
    e2e_die "openssl could not make the test certificate"
CHROME_HOME="$E2E_DIR/home"
mkdir -p "$CHROME_HOME/.pki/nssdb"
certutil -N -d "sql:$CHROME_HOME/.pki/nssdb" --empty-password
certutil -A -d "sql:$CHROME_HOME/.pki/nssdb" -n ferroturn-test -t "C,," -i "$E2E_DIR/cert.pem"
# Same layout without the certificate, for the negative control.
UNTRUSTED_HOME="$E2E_DIR/home-untrusted"
mkdir -p "$UNTRUSTED_HOME/.pki/nssdb"
certutil -N -d "sql:$UNTRUSTED_HOME/.pki/nssdb" --empty-password

# --- ferroturn ----------------------------------------------------------------
# Two listening ports, then the relay range.
BASE=$(e2e_free_ports 202) || e2e_die "no free loopback ports"
PORT=$BASE
TLS_PORT=$((BASE + 1))
MIN_PORT=$((BASE + 2))
MAX_PORT=$((BASE + 201))
SECRET=$(e2e_random_hex 32)
CONF="$E2E_DIR/turnserver.conf"
cat >"$CONF" <<EOF
listening-ip=127.0.0.1
relay-ip=127.0.0.1
listening-port=$PORT
tls-listening-port=$TLS_PORT
min-port=$MIN_PORT
max-port=$MAX_PORT
realm=ferroturn.test
allow-loopback-peers
use-auth-secret
static-auth-secret=$SECRET
cert=$E2E_DIR/cert.pem
pkey=$E2E_DIR/key.pem
fingerprint
log-file=stdout
EOF
E2E_SERVER=ferroturn
NO_COLOR=1 e2e_start ferroturn "$BIN" -c "$CONF"
e2e_wait_stun ferroturn 127.0.0.1 "$PORT" || e2e_die "ferroturn did not start"

# --- page server ----------------------------------------------------------------
OUT="$E2E_DIR/out"
mkdir -p "$OUT"
e2e_start pageserver python3 "$HERE/driver.py" serve "$OUT" "$E2E_DIR/http.port"
for ((i = 0; i < 50; i++)); do
    [[ -s "$E2E_DIR/http.port" ]] && break
    e2e_alive pageserver || break
    sleep 0.1
done
[[ -s "$E2E_DIR/http.port" ]] || e2e_die "page server did not start: $(tail -n 5 "$E2E_DIR/pageserver.log")"
HTTP_PORT=$(cat "$E2E_DIR/http.port")
e2e_log "page served on 127.0.0.1:$HTTP_PORT; ferroturn on $PORT (TLS $TLS_PORT), relay $MIN_PORT-$MAX_PORT"

# --- scenarios --------------------------------------------------------------------
# Why each flag is there:
#   --headless=new --no-sandbox --disable-gpu   root in a container, no display, no GPU
#   --user-data-dir (fresh per run)             no state shared between scenarios
#   --disable-quic --no-proxy-server            no QUIC probing, no proxy/WPAD lookups
#   --disable-background-networking --disable-component-update --disable-sync
#   --disable-default-apps --disable-extensions --no-first-run --no-default-browser-check
#   --disable-domain-reliability --disable-breakpad --metrics-recording-only
#                                               nothing but the test talks to the network
#   --disable-features=WebRtcHideLocalIpsWithMdns
#                                               no mDNS host names, so no multicast
#                                               out of eth0 (not needed to connect)
#   --allow-loopback-in-peer-connection         needed where lo is the only interface
#                                               (a fresh netns, a bare container):
#                                               without it Chromium finds no network
#                                               and gathers nothing at all
#   --password-store=basic                      no desktop keyring
#   --disable-dev-shm-usage                     small /dev/shm in containers
#   --mute-audio                                no media is played; keeps it quiet
#   --enable-logging=stderr --v=0               Chromium's own log in chromium-NAME.log
# The certificate is trusted through the NSS db in HOME (certificate checking
# stays on, which the tls-untrusted scenario proves), not --ignore-certificate-errors.

# run_scenario NAME TRANSPORT TURN_URL [refused]: one page load. TRANSPORT is
# what ferroturn must log for the allocations; with `refused`, Chromium runs
# with a HOME whose NSS db lacks the test certificate and must not connect.
run_scenario() {
    local name=$1 transport=$2 turn_url=$3 expect=${4:-connect}
    local home=$CHROME_HOME
    [[ "$expect" == refused ]] && home=$UNTRUSTED_HOME
    local profile="$E2E_DIR/profile-$name" result="$OUT/$name.result.json" url i detail
    mkdir -p "$profile"
    url=$(python3 "$HERE/driver.py" url "$HTTP_PORT" "$name" "$SECRET" 3600 $((TIMEOUT * 1000)) "$MESSAGES" "$turn_url" "$turn_url")
    e2e_log "run $name: $turn_url (expect ferroturn transport=\"$transport\")"
    HOME="$home" e2e_start "chromium-$name" timeout -k 5 $((WAIT + 10)) "$CHROMIUM" \
        --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage \
        --user-data-dir="$profile" \
        --disable-quic --no-proxy-server \
        --disable-background-networking --disable-component-update --disable-sync \
        --disable-default-apps --disable-extensions --no-first-run --no-default-browser-check \
        --disable-domain-reliability --disable-breakpad --metrics-recording-only \
        --disable-features=WebRtcHideLocalIpsWithMdns \
        --allow-loopback-in-peer-connection \
        --password-store=basic --mute-audio \
        --enable-logging=stderr --v=0 \
        "$url"
    for ((i = 0; i < WAIT * 10; i++)); do
        [[ -s "$result" ]] && break
        e2e_alive "chromium-$name" || break
        sleep 0.1
    done
    e2e_stop "chromium-$name"
    if [[ ! -s "$result" ]]; then
        e2e_record "$name" FAIL "no result from the page within ${WAIT}s (page log: $OUT/$name.page.log, chromium log: $E2E_DIR/chromium-$name.log)"
        tail -n 10 "$OUT/$name.page.log" 2>/dev/null | sed 's/^/    | /' >&2 || true
        return 1
    fi
    # ferroturn logs the allocation when it is made; give the log a moment to be flushed.
    sleep 0.2
    local judge=(check "$name" "$result" "$E2E_DIR/ferroturn.log" "$transport" "$MIN_PORT" "$MAX_PORT")
    [[ "$expect" == refused ]] && judge=(check-refused "$name" "$result" "$E2E_DIR/ferroturn.log")
    if detail=$(python3 "$HERE/driver.py" "${judge[@]}"); then
        e2e_record "$name" PASS "$detail"
    else
        e2e_record "$name" FAIL "$detail (page log: $OUT/$name.page.log)"
        tail -n 10 "$OUT/$name.page.log" 2>/dev/null | sed 's/^/    | /' >&2 || true
    fi
    if ! e2e_alive ferroturn; then
        e2e_record "$name-server-alive" FAIL "ferroturn died (log: $E2E_DIR/ferroturn.log)"
    fi
}

START=$SECONDS
run_scenario udp udp "turn:127.0.0.1:$PORT?transport=udp" || true
run_scenario tcp tcp "turn:127.0.0.1:$PORT?transport=tcp" || true
run_scenario tls tls "turns:localhost:$TLS_PORT?transport=tcp" || true
run_scenario tls-plain tls "turns:localhost:$PORT?transport=tcp" || true
# Negative control: proves Chromium really checks ferroturn's certificate, so
# the passing TLS runs above owe their success to the NSS trust, not to luck.
run_scenario tls-untrusted tls "turns:localhost:$TLS_PORT?transport=tcp" refused || true
e2e_log "scenarios took $((SECONDS - START))s"

e2e_summary "WebRTC (headless Chromium) through ferroturn"
