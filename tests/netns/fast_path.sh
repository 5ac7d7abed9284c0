#!/usr/bin/env bash
# The kernel fast path (kernel-fast-path = on) in network namespaces the script creates:
#
#   client ns  eth0 198.51.100.2 / 2001:db8:c::2 ---- c0 198.51.100.1 / 2001:db8:c::1  server ns
#   peer ns    eth0 192.0.2.2    / 2001:db8:e::2 ---- p0 192.0.2.1    / 2001:db8:e::1  (ferroturn)
#
# ferroturn listens on the client side and relays on the peer side; its TC program is attached
# to c0 and p0. Scenarios (PASS/FAIL with numbers; the suite ends with `N passed, N failed`):
#   fp-uclient-udp[-v6]   turnutils_uclient over UDP with channels: sent == received, 0 lost,
#                         and ferroturn_fast_path_packets_total grew (the kernel carried it)
#   fp-send, fp-tcp, fp-tls  Send indications, TURN/TCP, TURNS: relayed, through user space
#                         (the fast-path counter does not move)
#   fp-webrtc             headless Chromium, relay-only ICE over UDP: the two allocations'
#                         channel data goes relay to relay in the kernel (hairpin counter > 0)
#   fp-padding[-v6]       odd payloads padded with non-zero bytes: stripped in the kernel,
#                         checksums valid at the peer
#   fp-permission-expiry, fp-refresh0, fp-revoke [-v6], fp-drain: a client streams ChannelData
#                         to an echo peer; after its permission lapses, a Refresh 0, an admin
#                         API revocation, a drain that ends the process, the peer receives
#                         nothing more than 1 s later
#   fp-attached, fp-detached-*  bpftool lists the program on c0 and p0 while the server runs,
#                         and nothing after it stopped (SIGINT) or drained (SIGTERM)
#
#   tests/netns/fast_path.sh FERROTURN_BIN
#
# Needs root. Installs iproute2, coturn, bpftool, curl, chromium when missing. The namespaces
# are joined only to each other (no link to the host's namespace, no default route): nothing
# leaves them. Their names carry this shell's pid; everything is removed on exit.
# Environment: NETNS_SKIP_WEBRTC=1 skips Chromium; E2E_KEEP=1 keeps the logs.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=../e2e/lib.sh
source "$ROOT/tests/e2e/lib.sh"

BIN=${1:-}
[[ -n "$BIN" && -x "$BIN" ]] || e2e_die "usage: $0 FERROTURN_BIN (an executable ferroturn)"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
[[ $(id -u) -eq 0 ]] || e2e_die "needs root: network namespaces and eBPF"

ensure_tools() {
    local need=()
    command -v ip >/dev/null 2>&1 || need+=(iproute2)
    command -v turnutils_uclient >/dev/null 2>&1 || need+=(coturn)
    command -v bpftool >/dev/null 2>&1 || need+=(bpftool)
    command -v curl >/dev/null 2>&1 || need+=(curl)
    command -v openssl >/dev/null 2>&1 || need+=(openssl)
    if [[ "${NETNS_SKIP_WEBRTC:-0}" != 1 ]]; then
        chromium_path >/dev/null || need+=(chromium)
    fi
    if ((${#need[@]} > 0)); then
        command -v apt-get >/dev/null 2>&1 || e2e_die "apt-get not found; install: ${need[*]}"
        e2e_log "installing ${need[*]}"
        apt-get update >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}" >&2
    fi
}
ensure_tools

PFX="ftfp$$"
NS_CLI=$PFX-cli
NS_SRV=$PFX-srv
NS_PEER=$PFX-peer
CREATED_NS=()
SRV_C4=198.51.100.1
CLI4=198.51.100.2
SRV_P4=192.0.2.1
PEER4=192.0.2.2
SRV_C6=2001:db8:c::1
CLI6=2001:db8:c::2
SRV_P6=2001:db8:e::1
PEER6=2001:db8:e::2
SECRET=fastpathsecret0123456789abcdef01
ADMIN_TOKEN=fastpath-admin-token-0123456789
PEER_PORT=3480
METRICS_PORT=9641
ADMIN_PORT=9642

netns_cleanup() {
    local rc=$? ns
    set +e
    (exit $rc)
    e2e_cleanup
    for ns in "${CREATED_NS[@]+"${CREATED_NS[@]}"}"; do
        ip netns del "$ns" 2>/dev/null || true
    done
    exit $rc
}
e2e_init
trap netns_cleanup EXIT

in_ns() {
    local ns=$1
    shift
    ip netns exec "$ns" "$@"
}

mk_ns() {
    ip netns add "$1"
    CREATED_NS+=("$1")
    ip -n "$1" link set lo up
}

build_topology() {
    mk_ns "$NS_CLI"
    mk_ns "$NS_SRV"
    mk_ns "$NS_PEER"
    ip -n "$NS_CLI" link add eth0 type veth peer name c0 netns "$NS_SRV"
    ip -n "$NS_PEER" link add eth0 type veth peer name p0 netns "$NS_SRV"
    ip -n "$NS_CLI" addr add "$CLI4/24" dev eth0
    ip -n "$NS_CLI" addr add "$CLI6/64" dev eth0 nodad
    ip -n "$NS_PEER" addr add "$PEER4/24" dev eth0
    ip -n "$NS_PEER" addr add "$PEER6/64" dev eth0 nodad
    ip -n "$NS_SRV" addr add "$SRV_C4/24" dev c0
    ip -n "$NS_SRV" addr add "$SRV_C6/64" dev c0 nodad
    ip -n "$NS_SRV" addr add "$SRV_P4/24" dev p0
    ip -n "$NS_SRV" addr add "$SRV_P6/64" dev p0 nodad
    local ns
    for ns in "$NS_CLI" "$NS_PEER"; do ip -n "$ns" link set eth0 up; done
    ip -n "$NS_SRV" link set c0 up
    ip -n "$NS_SRV" link set p0 up
}

# metric NAME [LABELS]: the value of a metric from the server's /metrics (0 when absent).
metric() {
    local name=$1 labels=${2:-}
    in_ns "$NS_SRV" curl -fsS "http://127.0.0.1:$METRICS_PORT/metrics" 2>/dev/null |
        awk -v n="$name" -v l="$labels" '
            $1 == n || ($1 ~ "^" n "\\{" && index($1, l) > 0) { v = $2 }
            END { printf "%d\n", v + 0 }'
}

fast_packets() {
    echo $(($(metric ferroturn_fast_path_packets_total 'direction="to_peer"') + $(metric ferroturn_fast_path_packets_total 'direction="to_client"')))
}

wait_metrics() {
    local i
    for ((i = 0; i < 80; i++)); do
        in_ns "$NS_SRV" curl -fsS "http://127.0.0.1:$METRICS_PORT/metrics" >/dev/null 2>&1 && return 0
        e2e_alive "$1" || break
        sleep 0.25
    done
    tail -n 20 "$E2E_DIR/$1.log" >&2 || true
    return 1
}

# start_server NAME [EXTRA ARGS...]: ferroturn in the server namespace with the fast path on.
start_server() {
    local name=$1
    shift
    NO_COLOR=1 e2e_start "$name" ip netns exec "$NS_SRV" "$BIN" --no-config \
        --listening-ip "$SRV_C4" --listening-ip "$SRV_C6" \
        --relay-ip "$SRV_P4" --relay-ip "$SRV_P6" \
        --min-port 49152 --max-port 49999 \
        --use-auth-secret --static-auth-secret "$SECRET" --realm fastpath.test \
        --allowed-peer-ip "$PEER4" --allowed-peer-ip "$PEER6" \
        --allowed-peer-ip "$SRV_P4" --allowed-peer-ip "$SRV_P6" \
        --rfc5766-channel-numbers \
        --prometheus --prometheus-address 127.0.0.1 --prometheus-port "$METRICS_PORT" \
        --admin-token "$ADMIN_TOKEN" --admin-port "$ADMIN_PORT" \
        --cert "$E2E_DIR/cert.pem" --pkey "$E2E_DIR/key.pem" \
        --kernel-fast-path on "$@"
    E2E_SERVER=$name
    wait_metrics "$name" || e2e_die "ferroturn ($name) did not come up with the fast path"
}

# The uclient shim of tests/netns/run.sh: lib.sh's judging, run in the client namespace.
mkdir -p "$E2E_DIR/shim"
cat >"$E2E_DIR/shim/turnutils_uclient" <<EOF
#!/bin/sh
exec ip netns exec "$NS_CLI" "$(command -v turnutils_uclient)" "\$@"
EOF
chmod +x "$E2E_DIR/shim/turnutils_uclient"
PATH="$E2E_DIR/shim:$PATH"
LOAD=(-n 200 -m 4 -l 170)

# through NAME KIND UCLIENT-ARGS...: a uclient run that must relay, and the fast-path counter
# must grow (KIND=kernel) or stay where it was (KIND=user).
through() {
    local name=$1 kind=$2 before after
    shift 2
    before=$(fast_packets)
    e2e_uclient "$name-relay" "$@" || return 0
    after=$(fast_packets)
    local moved=$((after - before))
    if [[ $kind == kernel ]] && ((moved > 0)); then
        e2e_record "$name" PASS "the kernel forwarded $moved packets of the run"
    elif [[ $kind == user ]] && ((moved == 0)); then
        e2e_record "$name" PASS "relayed in user space: the fast-path counter stayed at $after"
    else
        e2e_record "$name" FAIL "fast-path packets moved by $moved during a $kind-path run"
    fi
}

# stops_within NAME SINK_FILE T0: passes when no datagram reached the peer later than T0 + 1 s
# (and some reached it before T0).
stops_within() {
    local name=$1 file=$2 t0=$3 verdict
    verdict=$(python3 - "$file" "$t0" <<'EOF'
import sys
times = [float(l.split()[0]) for l in open(sys.argv[1]) if l.strip()]
t0 = float(sys.argv[2])
before = sum(1 for t in times if t <= t0)
late = [t - t0 for t in times if t > t0 + 1.0]
after = [t - t0 for t in times if t > t0]
last = max(after) if after else 0.0
print(f"{'ok' if before > 0 and not late else 'bad'} {before} packets before, {len(after)} after, last {last:.3f} s after")
EOF
)
    if [[ $verdict == ok* ]]; then
        e2e_record "$name" PASS "${verdict#ok }"
    else
        e2e_record "$name" FAIL "${verdict#bad }"
    fi
}

# stream NAME FAMILY SECONDS ACTION [WHEN]: a client streaming ChannelData at 200 pps to an
# echo sink; prints the client's JSON line. The sink's arrival times go to $E2E_DIR/NAME.sink.
stream_start() {
    local name=$1 family=$2 seconds=$3 action=$4 when=${5:-0} server peer
    if [[ $family == 6 ]]; then server=$SRV_C6 peer=$PEER6; else server=$SRV_C4 peer=$PEER4; fi
    e2e_start "sink-$name" ip netns exec "$NS_PEER" python3 "$HERE/fast_path_client.py" sink \
        "$peer" "$PEER_PORT" "$E2E_DIR/$name.sink" $((seconds + 3))
    sleep 0.3
    in_ns "$NS_CLI" timeout -k 2 $((seconds + 15)) python3 "$HERE/fast_path_client.py" client \
        "$server" 3478 "$SECRET" "$peer" "$PEER_PORT" "$seconds" 200 "$action" "$when" \
        >"$E2E_DIR/$name.client" 2>&1 &
    STREAM_PID=$!
}

stream_wait() {
    wait "$STREAM_PID" || true
    e2e_stop "sink-$1"
}

json_field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

# attached_count: how many links hold a program named ferroturn_ingress. bpftool 7.1 (Debian
# 12) does not name the interface of a TCX link, and links are not per namespace: the count is
# host-wide, so no other fast-path ferroturn may run on the machine during this suite.
attached_count() {
    python3 - <<'EOF'
import json, subprocess
def j(*args):
    out = subprocess.run(["bpftool", "-j", *args], capture_output=True, text=True).stdout
    return json.loads(out or "[]")
ids = {p["id"] for p in j("prog", "show") if p.get("name", "").startswith("ferroturn_ingre")}
print(sum(1 for l in j("link", "show") if l.get("prog_id") in ids))
EOF
}

# detached NAME SERVER: passes when no ferroturn program is left on c0 or p0.
detached() {
    local left
    left=$(attached_count)
    if ((left == 0)); then
        e2e_record "$1" PASS "no ferroturn program attached anywhere after $2 stopped"
    else
        e2e_record "$1" FAIL "$left programs still attached after $2 stopped"
    fi
}

# --- setup ----------------------------------------------------------------------------------
build_topology
e2e_log "namespaces: ${CREATED_NS[*]}"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -sha256 -subj /CN=turn.test \
    -addext "subjectAltName=IP:$SRV_C4" \
    -keyout "$E2E_DIR/key.pem" -out "$E2E_DIR/cert.pem" >/dev/null 2>&1 ||
    e2e_die "openssl could not make the test certificate"

start_server fp
n=$(attached_count)
if grep -q "kernel fast path attached" "$E2E_DIR/fp.log" && ((n == 2)); then
    e2e_record fp-attached PASS "$(grep -m1 -o 'interfaces=[^ ]*' "$E2E_DIR/fp.log"), bpftool lists $n programs"
else
    e2e_record fp-attached FAIL "bpftool lists $n programs on c0/p0 (want 2); log: $E2E_DIR/fp.log"
fi

# --- turnutils_uclient: channels in the kernel; Send, TCP, TLS in user space -------------------
e2e_start peer4 ip netns exec "$NS_PEER" turnutils_peer -L "$PEER4" -p "$PEER_PORT"
e2e_start peer6 ip netns exec "$NS_PEER" turnutils_peer -L "$PEER6" -p "$PEER_PORT"
sleep 0.5
through fp-uclient-udp kernel -p 3478 "${LOAD[@]}" -W "$SECRET" -u alice -e "$PEER4" -r "$PEER_PORT" "$SRV_C4"
through fp-uclient-udp-v6 kernel -p 3478 "${LOAD[@]}" -W "$SECRET" -u alice -e "$PEER6" -r "$PEER_PORT" "$SRV_C6"
through fp-send user -p 3478 "${LOAD[@]}" -s -W "$SECRET" -u alice -e "$PEER4" -r "$PEER_PORT" "$SRV_C4"
through fp-tcp user -p 3478 "${LOAD[@]}" -t -W "$SECRET" -u alice -e "$PEER4" -r "$PEER_PORT" "$SRV_C4"
through fp-tls user -p 5349 "${LOAD[@]}" -t -S -W "$SECRET" -u alice -e "$PEER4" -r "$PEER_PORT" "$SRV_C4"
e2e_stop peer4
e2e_stop peer6

# --- Chromium: two relayed allocations talk to each other in the kernel -------------------------
if [[ "${NETNS_SKIP_WEBRTC:-0}" == 1 ]]; then
    e2e_log "NETNS_SKIP_WEBRTC=1: skipping Chromium"
elif CHROMIUM=$(chromium_path); then
    WEBRTC="$ROOT/tests/e2e/webrtc"
    WEBRTC_OUT="$E2E_DIR/webrtc"
    mkdir -p "$WEBRTC_OUT" "$E2E_DIR/chrome-home"
    e2e_start pageserver ip netns exec "$NS_CLI" python3 "$WEBRTC/driver.py" serve "$WEBRTC_OUT" "$E2E_DIR/http.port"
    for ((i = 0; i < 50; i++)); do
        [[ -s "$E2E_DIR/http.port" ]] && break
        sleep 0.1
    done
    HTTP_PORT=$(cat "$E2E_DIR/http.port" 2>/dev/null || true)
    hairpin_before=$(metric ferroturn_fast_path_packets_total 'direction="hairpin"')
    turn_url="turn:$SRV_C4:3478?transport=udp"
    url=$(python3 "$WEBRTC/driver.py" url "$HTTP_PORT" fp-webrtc "$SECRET" 3600 20000 20 "$turn_url" "$turn_url")
    result="$WEBRTC_OUT/fp-webrtc.result.json"
    HOME="$E2E_DIR/chrome-home" e2e_start chromium ip netns exec "$NS_CLI" \
        timeout -k 5 45 "$CHROMIUM" \
        --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage \
        --user-data-dir="$E2E_DIR/profile" --disable-quic --no-proxy-server \
        --disable-background-networking --disable-component-update --disable-sync \
        --disable-default-apps --disable-extensions --no-first-run --no-default-browser-check \
        --disable-domain-reliability --disable-breakpad --metrics-recording-only \
        --disable-features=WebRtcHideLocalIpsWithMdns \
        --password-store=basic --mute-audio --enable-logging=stderr --v=0 "$url"
    for ((i = 0; i < 400; i++)); do
        [[ -s "$result" ]] && break
        e2e_alive chromium || break
        sleep 0.1
    done
    e2e_stop chromium
    e2e_stop pageserver
    hairpin=$(($(metric ferroturn_fast_path_packets_total 'direction="hairpin"') - hairpin_before))
    if [[ ! -s "$result" ]]; then
        e2e_record fp-webrtc FAIL "no result from the page (chromium log: $E2E_DIR/chromium.log)"
    elif detail=$(WEBRTC_RELAY_IP=$SRV_P4 python3 "$WEBRTC/driver.py" check fp-webrtc "$result" \
        "$E2E_DIR/fp.log" udp 49152 49999); then
        if ((hairpin > 0)); then
            e2e_record fp-webrtc PASS "$detail; $hairpin packets relay to relay in the kernel"
        else
            e2e_record fp-webrtc FAIL "$detail, but the kernel forwarded none of it (hairpin counter unchanged)"
        fi
    else
        e2e_record fp-webrtc FAIL "$detail"
    fi
else
    e2e_record fp-webrtc FAIL "chromium not found after install"
fi

# SIGINT stops at once (SIGTERM would drain for drain-timeout first).
kill -INT "$(cat "$E2E_DIR/fp.pid")" 2>/dev/null || true
for ((i = 0; i < 100; i++)); do
    e2e_alive fp || break
    sleep 0.05
done
e2e_stop fp
E2E_SERVER=""
detached fp-detached-stop fp

# Short permissions for the lifecycle checks; a drain of 1 s at the end.
start_server fpl --permission-lifetime 4 --drain-timeout 1

# --- the kernel stops on time ---------------------------------------------------------------
for family in 4 6; do
    sfx=""
    [[ $family == 6 ]] && sfx=-v6
    # The permission (4 s here) lapses while the client keeps sending: the kernel stops at
    # the deadline by itself, user space drops from then on.
    before=$(fast_packets)
    stream_start "expiry$sfx" "$family" 7 none
    stream_wait "expiry$sfx"
    moved=$(($(fast_packets) - before))
    bound=$(json_field "$E2E_DIR/expiry$sfx.client" bound)
    t0=$(python3 -c "print($bound + 4)")
    if ((moved > 0)); then
        stops_within "fp-permission-expiry$sfx" "$E2E_DIR/expiry$sfx.sink" "$t0"
    else
        e2e_record "fp-permission-expiry$sfx" FAIL "the kernel forwarded nothing ($(cat "$E2E_DIR/expiry$sfx.client"))"
    fi

    # Odd payloads padded with non-zero bytes: the kernel strips the padding and its checksum
    # contribution (a wrong checksum would make the peer's kernel drop every datagram).
    up_before=$(metric ferroturn_fast_path_packets_total 'direction="to_peer"')
    FP_PAYLOAD=97 FP_PAD=1 stream_start "refresh0$sfx" "$family" 4 refresh0 2
    stream_wait "refresh0$sfx"
    up=$(($(metric ferroturn_fast_path_packets_total 'direction="to_peer"') - up_before))
    sizes=$(awk '{print $2}' "$E2E_DIR/refresh0$sfx.sink" | sort -u | tr '\n' ' ')
    if [[ $sizes == "97 " ]] && ((up > 0)); then
        e2e_record "fp-padding$sfx" PASS "$up padded 97-byte payloads stripped in the kernel, reached the peer as 97 bytes with valid checksums"
    else
        e2e_record "fp-padding$sfx" FAIL "payload sizes at the peer: '${sizes}' (want 97), kernel to_peer packets: $up"
    fi
    t0=$(json_field "$E2E_DIR/refresh0$sfx.client" acted)
    stops_within "fp-refresh0$sfx" "$E2E_DIR/refresh0$sfx.sink" "$t0"

    stream_start "revoke$sfx" "$family" 4 none
    sleep 2
    t0=$(date +%s.%N)
    in_ns "$NS_SRV" curl -fsS -X DELETE -H "Authorization: Bearer $ADMIN_TOKEN" \
        "http://127.0.0.1:$ADMIN_PORT/admin/sessions/$(in_ns "$NS_SRV" curl -fsS \
            -H "Authorization: Bearer $ADMIN_TOKEN" "http://127.0.0.1:$ADMIN_PORT/admin/sessions" |
            python3 -c '
import json, sys
mine = [x for x in json.load(sys.stdin)
        if x["username"].endswith(":fastpath") and ("[" in x["client"]) == (sys.argv[1] == "6")]
print(min(mine, key=lambda x: x["age_seconds"])["id"])' "$family")" \
        >/dev/null || e2e_log "revocation request failed"
    stream_wait "revoke$sfx"
    stops_within "fp-revoke$sfx" "$E2E_DIR/revoke$sfx.sink" "$t0"
done

# --- a drain ends the process; the kernel must stop with it ----------------------------------
stream_start drain 4 5 none
sleep 2
e2e_log "SIGTERM: drain with drain-timeout 1"
kill -TERM "$(cat "$E2E_DIR/fpl.pid")" 2>/dev/null || true
for ((i = 0; i < 100; i++)); do
    e2e_alive fpl || break
    sleep 0.05
done
t0=$(date +%s.%N)
stream_wait drain
if e2e_alive fpl; then
    e2e_record fp-drain FAIL "the server did not stop after the drain"
else
    stops_within fp-drain "$E2E_DIR/drain.sink" "$t0"
fi
E2E_SERVER=""
detached fp-detached-drain fpl

e2e_summary "kernel fast path (network namespaces)"
