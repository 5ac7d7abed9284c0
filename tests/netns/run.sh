#!/usr/bin/env bash
# ferroturn on a network that looks like the real deployment, built from network namespaces:
#
#   client (10.66.0.2) --- nat (MASQUERADE) ---+
#                                               |  "internet": a bridge in its own namespace,
#   vps (203.0.113.10, runs ferroturn) ---------+  203.0.113.0/24
#    |                                          |
#    | tunnel 10.99.0.1 <-> 10.99.0.2            +--- jvb (203.0.113.20, turnutils_peer)
#    |
#   home (10.99.0.2: the seed's videobridge, reached at 203.0.113.10:10000 through DNAT)
#
# Scenarios (each prints PASS/FAIL with numbers; the suite ends with `N passed, N failed`):
#   seed-*        the seed deployment's turnserver.conf (external-ip moved into the test net,
#                 the test peers allowed): turnutils_uclient from behind the NAT over UDP,
#                 TCP, TLS and with Send indications; sent == received, 0 lost
#   noudp-*       the same client behind a firewall that drops all UDP: STUN/UDP gets no
#                 answer, TURN/TCP and TURNS still relay
#   webrtc-*      headless Chromium in the client namespace, relay-only ICE, over UDP and TCP
#   second-server-refused  ferroturn started beside a coturn still holding port 3478 refuses
#   deploy-*      the binary started with exactly the arguments and environment of the
#                 docker-compose files, the systemd unit and `ferroturn jitsi init`'s files
#                 (the bridge-network compose file in a container namespace behind the VPS,
#                 reached through its published ports as dockerd would DNAT them)
#   dnat-*        the seed's layout: the bridge reached at the VPS's public address through
#                 DNAT over a tunnel; PREROUTING for outside senders, OUTPUT for the relay's own
#                 packets (and a control run without the OUTPUT rule, which must relay nothing)
#
#   tests/netns/run.sh FERROTURN_BIN
#
# Needs root (namespaces, iptables). Installs iproute2, iptables, coturn (uclient/peer),
# chromium, libnss3-tools, openssl, python3-yaml when missing. The namespaces have no link to
# the host's namespace and no route out of the test topology: nothing leaves them. Their names
# carry this shell's pid; everything is removed on exit. Every wait is bounded.
# Environment: NETNS_SKIP_WEBRTC=1 skips the Chromium part; E2E_KEEP=1 keeps the logs.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=../e2e/lib.sh
source "$ROOT/tests/e2e/lib.sh"

BIN=${1:-}
[[ -n "$BIN" && -x "$BIN" ]] || e2e_die "usage: $0 FERROTURN_BIN (an executable ferroturn)"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
# Debian's turnutils_uclient (4.6) binds channels up to 0x7FFF, which RFC 8656 refuses; every
# ferroturn this suite drives with it accepts RFC 5766's range. Test-only: the deployment files
# themselves stay as shipped.
OLD_CLIENT=(--rfc5766-channel-numbers)
[[ $(id -u) -eq 0 ]] || e2e_die "needs root: network namespaces and iptables"

ensure_tools() {
    local need=()
    command -v ip >/dev/null 2>&1 || need+=(iproute2)
    command -v iptables >/dev/null 2>&1 || need+=(iptables)
    { command -v turnutils_uclient && command -v turnserver; } >/dev/null 2>&1 || need+=(coturn)
    command -v openssl >/dev/null 2>&1 || need+=(openssl)
    python3 -c 'import yaml' 2>/dev/null || need+=(python3-yaml)
    if [[ "${NETNS_SKIP_WEBRTC:-0}" != 1 ]]; then
        chromium_path >/dev/null || need+=(chromium)
        command -v certutil >/dev/null 2>&1 || need+=(libnss3-tools)
    fi
    if ((${#need[@]} > 0)); then
        command -v apt-get >/dev/null 2>&1 || e2e_die "apt-get not found; install: ${need[*]}"
        e2e_log "installing ${need[*]}"
        apt-get update >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}" >&2
    fi
}
ensure_tools

# --- namespaces ---------------------------------------------------------------------------
PFX="ftn$$"
NS_INET=$PFX-inet
NS_VPS=$PFX-vps
NS_JVB=$PFX-jvb
NS_NAT=$PFX-nat
NS_CLI=$PFX-cli
NS_HOME=$PFX-home
NS_CTR=$PFX-ctr
CREATED_NS=()

VPS_IP=203.0.113.10
JVB_IP=203.0.113.20
NAT_WAN_IP=203.0.113.30
CLI_IP=10.66.0.2
TUN_VPS=10.99.0.1
TUN_HOME=10.99.0.2
SECRET=abcdefghijklmnopqrstuvwxyz012345
PEER_PORT=3480
BRIDGE_PORT=10000

netns_cleanup() {
    local rc=$? ns
    set +e
    # lib.sh stops the processes (they run inside the namespaces), then the namespaces go.
    (exit $rc)
    e2e_cleanup
    for ns in "${CREATED_NS[@]+"${CREATED_NS[@]}"}"; do
        ip netns del "$ns" 2>/dev/null || true
    done
    exit $rc
}

e2e_init
trap netns_cleanup EXIT

mk_ns() {
    ip netns add "$1"
    CREATED_NS+=("$1")
    ip -n "$1" link set lo up
}

# veth NS_A IF_A NS_B IF_B: a cable between two namespaces (never the host's).
veth() {
    ip -n "$1" link add "$2" type veth peer name "$4" netns "$3"
    ip -n "$1" link set "$2" up
    ip -n "$3" link set "$4" up
}

in_ns() {
    local ns=$1
    shift
    ip netns exec "$ns" "$@"
}

build_topology() {
    local ns
    for ns in "$NS_INET" "$NS_VPS" "$NS_JVB" "$NS_NAT" "$NS_CLI"; do mk_ns "$ns"; done
    # The "internet": one bridge; the hosts on it have public-looking documentation addresses.
    ip -n "$NS_INET" link add br0 type bridge
    ip -n "$NS_INET" link set br0 up
    veth "$NS_INET" p-vps "$NS_VPS" eth0
    veth "$NS_INET" p-jvb "$NS_JVB" eth0
    veth "$NS_INET" p-nat "$NS_NAT" wan
    for port in p-vps p-jvb p-nat; do ip -n "$NS_INET" link set "$port" master br0; done
    ip -n "$NS_VPS" addr add "$VPS_IP/24" dev eth0
    ip -n "$NS_JVB" addr add "$JVB_IP/24" dev eth0
    ip -n "$NS_NAT" addr add "$NAT_WAN_IP/24" dev wan
    # The client's home network behind a NAT router.
    veth "$NS_NAT" lan "$NS_CLI" eth0
    ip -n "$NS_NAT" addr add 10.66.0.1/24 dev lan
    ip -n "$NS_CLI" addr add "$CLI_IP/24" dev eth0
    ip -n "$NS_CLI" route add default via 10.66.0.1
    in_ns "$NS_NAT" sysctl -qw net.ipv4.ip_forward=1
    in_ns "$NS_NAT" iptables -t nat -A POSTROUTING -o wan -j MASQUERADE
    # No IPv6 anywhere: the suite is about IPv4 NAT, and nothing should wander off.
    for ns in "$NS_INET" "$NS_VPS" "$NS_JVB" "$NS_NAT" "$NS_CLI"; do
        in_ns "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    done
}

# The seed's videobridge at home, reached over a tunnel from the VPS (added for the DNAT part,
# so that the VPS owns exactly one non-loopback address until then).
add_tunnel() {
    mk_ns "$NS_HOME"
    in_ns "$NS_HOME" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    veth "$NS_VPS" tun0 "$NS_HOME" tun0
    ip -n "$NS_VPS" addr add "$TUN_VPS/30" dev tun0
    ip -n "$NS_HOME" addr add "$TUN_HOME/30" dev tun0
    ip -n "$NS_HOME" route add default via "$TUN_VPS"
    in_ns "$NS_VPS" sysctl -qw net.ipv4.ip_forward=1
}

# --- helpers ------------------------------------------------------------------------------
# wait_stun NAME NS ADDR PORT: like lib.sh's e2e_wait_stun, probing from namespace NS.
wait_stun() {
    local name=$1 ns=$2 addr=$3 port=$4 i
    for ((i = 0; i < E2E_START_TIMEOUT * 4; i++)); do
        if ! e2e_alive "$name"; then
            e2e_log "$name exited before answering; last log lines:"
            tail -n 20 "$E2E_DIR/$name.log" >&2 || true
            return 1
        fi
        if in_ns "$ns" python3 "$HERE/probe.py" stun "$addr" "$port"; then
            return 0
        fi
        sleep 0.25
    done
    e2e_log "$name did not answer STUN on $addr:$port; last log lines:"
    tail -n 20 "$E2E_DIR/$name.log" >&2 || true
    return 1
}

# start_peer NAME NS ADDR PORT: turnutils_peer (echo) in NS.
start_peer() {
    e2e_start "$1" ip netns exec "$2" turnutils_peer -L "$3" -p "$4"
    local i
    for ((i = 0; i < 50; i++)); do
        in_ns "$2" python3 "$HERE/probe.py" bound "$3" "$4" && return 0
        sleep 0.1
    done
    e2e_die "turnutils_peer ($1) did not bind $3:$4"
}

# lib.sh's e2e_uclient runs `turnutils_uclient`; this shim runs it in the client namespace,
# so the judging of its summary is exactly the loopback suite's.
mkdir -p "$E2E_DIR/shim"
cat >"$E2E_DIR/shim/turnutils_uclient" <<EOF
#!/bin/sh
exec ip netns exec "$NS_CLI" "$(command -v turnutils_uclient)" "\$@"
EOF
chmod +x "$E2E_DIR/shim/turnutils_uclient"
PATH="$E2E_DIR/shim:$PATH"

LOAD=(-n 100 -m 4 -l 170)
SHORT=(-n 40 -m 2 -l 170)

# stun_silent NAME: passes when a STUN Binding over UDP from the client gets no answer.
stun_silent() {
    if in_ns "$NS_CLI" python3 "$HERE/probe.py" stun "$VPS_IP" 3478; then
        e2e_record "$1" FAIL "STUN over UDP was answered through a firewall that drops UDP"
    else
        e2e_record "$1" PASS "STUN over UDP gets no answer (UDP dropped at the client's router)"
    fi
}

# relay_log_check NAME SERVER WANT: passes when the server logged WANT as a relay address and
# nothing else.
relay_log_check() {
    local name=$1 server=$2 want=$3 got
    got=$(sed 's/\x1b\[[0-9;]*m//g' "$E2E_DIR/$server.log" | grep 'relay address' |
        grep -oE 'ip=[0-9a-f.:]+' | sort -u | tr '\n' ' ' || true)
    if [[ "$got" == "ip=$want " ]]; then
        e2e_record "$name" PASS "relays on $want only (log: ${got% })"
    else
        e2e_record "$name" FAIL "relay addresses logged: '${got% }', expected ip=$want (log: $E2E_DIR/$server.log)"
    fi
}

# --- the seed's deployment ------------------------------------------------------------------
build_topology
e2e_log "namespaces: ${CREATED_NS[*]}"
start_peer peer "$NS_JVB" "$JVB_IP" "$PEER_PORT"

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -sha256 -subj /CN=turn.test \
    -addext "subjectAltName=DNS:turn.test,IP:$VPS_IP" \
    -keyout "$E2E_DIR/key.pem" -out "$E2E_DIR/cert.pem" >/dev/null 2>&1 ||
    e2e_die "openssl could not make the test certificate"

# The seed's file as its operator wrote it; external-ip is the VPS's address in the test net,
# and the peers this test relays to are allowed (documentation addresses are denied by
# default): the echo peer, and the VPS itself (a browser's two relays talk to each other).
SEED="$E2E_DIR/seed.conf"
cat >"$SEED" <<EOF
realm=google.sex.pl
external-ip=$VPS_IP
fingerprint
lt-cred-mech

static-auth-secret=$SECRET
allowed-peer-ip=$JVB_IP
allowed-peer-ip=$VPS_IP
EOF

E2E_SERVER=seed
NO_COLOR=1 e2e_start seed ip netns exec "$NS_VPS" "$BIN" -c "$SEED" "${OLD_CLIENT[@]}" \
    --cert "$E2E_DIR/cert.pem" --pkey "$E2E_DIR/key.pem"
wait_stun seed "$NS_CLI" "$VPS_IP" 3478 || e2e_die "ferroturn did not come up with the seed's file"
relay_log_check seed-relay-address seed "$VPS_IP"

TO_JVB=(-e "$JVB_IP" -r "$PEER_PORT")
e2e_uclient seed-udp -p 3478 "${LOAD[@]}" -W "$SECRET" -u alice "${TO_JVB[@]}" "$VPS_IP" || true
e2e_uclient seed-udp-send -p 3478 "${LOAD[@]}" -W "$SECRET" -u alice -s "${TO_JVB[@]}" "$VPS_IP" || true
e2e_uclient seed-tcp -p 3478 "${LOAD[@]}" -t -W "$SECRET" -u alice "${TO_JVB[@]}" "$VPS_IP" || true
e2e_uclient seed-tls -p 5349 "${LOAD[@]}" -t -S -W "$SECRET" -u alice "${TO_JVB[@]}" "$VPS_IP" || true

# --- the same client behind a firewall that drops UDP ------------------------------------------
in_ns "$NS_NAT" iptables -I FORWARD -p udp -j DROP
stun_silent noudp-stun-blocked
e2e_uclient noudp-tcp -p 3478 "${LOAD[@]}" -t -W "$SECRET" -u alice "${TO_JVB[@]}" "$VPS_IP" || true
e2e_uclient noudp-tls -p 5349 "${LOAD[@]}" -t -S -W "$SECRET" -u alice "${TO_JVB[@]}" "$VPS_IP" || true
in_ns "$NS_NAT" iptables -D FORWARD -p udp -j DROP

# --- headless Chromium in the client namespace ----------------------------------------------------
run_webrtc() {
    local name=$1 transport=$2 turn_url=$3 profile result url i detail
    profile="$E2E_DIR/profile-$name"
    result="$WEBRTC_OUT/$name.result.json"
    mkdir -p "$profile"
    url=$(python3 "$WEBRTC/driver.py" url "$HTTP_PORT" "$name" "$SECRET" 3600 20000 20 "$turn_url" "$turn_url")
    # The loopback suite's flags (see tests/e2e/webrtc/run.sh); in a namespace Chromium also
    # finds no D-Bus or proxy config, which it survives with these.
    HOME="$E2E_DIR/chrome-home" e2e_start "chromium-$name" ip netns exec "$NS_CLI" \
        timeout -k 5 45 "$CHROMIUM" \
        --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage \
        --user-data-dir="$profile" --disable-quic --no-proxy-server \
        --disable-background-networking --disable-component-update --disable-sync \
        --disable-default-apps --disable-extensions --no-first-run --no-default-browser-check \
        --disable-domain-reliability --disable-breakpad --metrics-recording-only \
        --disable-features=WebRtcHideLocalIpsWithMdns \
        --password-store=basic --mute-audio --enable-logging=stderr --v=0 \
        "$url"
    for ((i = 0; i < 400; i++)); do
        [[ -s "$result" ]] && break
        e2e_alive "chromium-$name" || break
        sleep 0.1
    done
    e2e_stop "chromium-$name"
    if [[ ! -s "$result" ]]; then
        e2e_record "$name" FAIL "no result from the page (chromium log: $E2E_DIR/chromium-$name.log)"
        return 1
    fi
    sleep 0.2
    if detail=$(WEBRTC_RELAY_IP=$VPS_IP python3 "$WEBRTC/driver.py" check "$name" "$result" \
        "$E2E_DIR/seed.log" "$transport" 49152 65535); then
        e2e_record "$name" PASS "$detail"
    else
        e2e_record "$name" FAIL "$detail"
    fi
}

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
    if [[ -s "$E2E_DIR/http.port" ]]; then
        HTTP_PORT=$(cat "$E2E_DIR/http.port")
        run_webrtc webrtc-udp udp "turn:$VPS_IP:3478?transport=udp" || true
        run_webrtc webrtc-tcp tcp "turn:$VPS_IP:3478?transport=tcp" || true
    else
        e2e_record webrtc-page-server FAIL "page server did not start: $(tail -n 3 "$E2E_DIR/pageserver.log")"
    fi
    e2e_stop pageserver
else
    e2e_record webrtc FAIL "chromium not found after install"
fi
e2e_stop seed
E2E_SERVER=""

# --- the seed's file with poll-coalesce-us: waits between polls, nothing lost across the NAT ----
E2E_SERVER=seed-coalesce
NO_COLOR=1 e2e_start seed-coalesce ip netns exec "$NS_VPS" "$BIN" -c "$SEED" "${OLD_CLIENT[@]}" \
    --cert "$E2E_DIR/cert.pem" --pkey "$E2E_DIR/key.pem" --poll-coalesce-us 500
if wait_stun seed-coalesce "$NS_CLI" "$VPS_IP" 3478; then
    e2e_uclient seed-coalesce-udp -p 3478 "${LOAD[@]}" -W "$SECRET" -u alice "${TO_JVB[@]}" "$VPS_IP" || true
    e2e_uclient seed-coalesce-tls -p 5349 "${LOAD[@]}" -t -S -W "$SECRET" -u alice "${TO_JVB[@]}" "$VPS_IP" || true
else
    e2e_record seed-coalesce FAIL "did not answer STUN with --poll-coalesce-us (log: $E2E_DIR/seed-coalesce.log)"
fi
e2e_stop seed-coalesce
E2E_SERVER=""

# --- a coturn left running during the migration ------------------------------------------------
# coturn binds its listeners with SO_REUSEPORT, so a second server could join its port and the
# kernel would split the clients between them; ferroturn must refuse instead, naming the port.
e2e_start coturn ip netns exec "$NS_VPS" turnserver -n --listening-ip="$VPS_IP" --listening-port=3478 \
    --no-tls --no-dtls --no-cli --no-rfc5780 --use-auth-secret --static-auth-secret="$SECRET" \
    --realm=coturn.test --pidfile="$E2E_DIR/coturn.pid" --log-file=stdout --simple-log
if wait_stun coturn "$NS_CLI" "$VPS_IP" 3478; then
    rc=0
    in_ns "$NS_VPS" timeout -k 2 10 "$BIN" -c "$SEED" >"$E2E_DIR/second-server.log" 2>&1 || rc=$?
    if ((rc == 1)) && grep -q "udp port 3478 on $VPS_IP is already in use" "$E2E_DIR/second-server.log"; then
        e2e_record second-server-refused PASS "exit 1: $(grep -m1 -o 'udp port 3478 on [^(]*' "$E2E_DIR/second-server.log")"
    else
        e2e_record second-server-refused FAIL "exit $rc beside a running coturn (log: $E2E_DIR/second-server.log)"
    fi
else
    e2e_record second-server-refused FAIL "coturn did not start (log: $E2E_DIR/coturn.log)"
fi
e2e_stop coturn

# --- the deployment files, started exactly as they start ferroturn --------------------------------
# Docker's bridge network on the VPS: a container namespace on a private address, its traffic
# masqueraded out of eth0, and each published port DNATed to it (what dockerd sets up).
CTR_IP=172.18.0.2
docker_bridge_up() {
    local entry proto host ctr
    mk_ns "$NS_CTR"
    in_ns "$NS_CTR" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    veth "$NS_VPS" docker0 "$NS_CTR" eth0
    ip -n "$NS_VPS" addr add 172.18.0.1/16 dev docker0
    ip -n "$NS_CTR" addr add "$CTR_IP/16" dev eth0
    ip -n "$NS_CTR" route add default via 172.18.0.1
    in_ns "$NS_VPS" sysctl -qw net.ipv4.ip_forward=1
    in_ns "$NS_VPS" iptables -t nat -A POSTROUTING -s 172.18.0.0/16 ! -o docker0 -j MASQUERADE
    for entry in "${LAUNCH_PUBLISH[@]}"; do
        read -r proto host ctr <<<"$entry"
        in_ns "$NS_VPS" iptables -t nat -A PREROUTING -d "$VPS_IP" -p "$proto" --dport "${host/-/:}" \
            -j DNAT --to-destination "$CTR_IP:$ctr"
    done
}
docker_bridge_down() {
    in_ns "$NS_VPS" iptables -t nat -F PREROUTING
    in_ns "$NS_VPS" iptables -t nat -F POSTROUTING
    ip -n "$NS_VPS" link del docker0
    ip netns del "$NS_CTR"
}

# deploy_run NAME SECRET: starts $BIN with LAUNCH_ARGS/LAUNCH_ENV (and LAUNCH_PRE first) with
# nothing else in its environment, in the VPS namespace (or, for LAUNCH_NET=bridge, in a
# container namespace behind it with LAUNCH_PUBLISH's ports), relays UDP and TCP across.
deploy_run() {
    local name=$1 secret=$2 pre_log ns=$NS_VPS relay_ip=$VPS_IP
    if [[ "${LAUNCH_NET:-host}" == bridge ]]; then
        ns=$NS_CTR
        relay_ip=$CTR_IP
    fi
    if ((${#LAUNCH_PRE[@]} > 0)); then
        pre_log="$E2E_DIR/$name-pre.log"
        if ! in_ns "$ns" env -i "${LAUNCH_ENV[@]}" "$BIN" "${LAUNCH_PRE[@]}" >"$pre_log" 2>&1; then
            e2e_record "$name-pre" FAIL "ExecStartPre failed: $(tr '\n' ' ' <"$pre_log" | tail -c 400)"
            return 1
        fi
        e2e_record "$name-pre" PASS "ExecStartPre: $(grep -m1 'relay address' "$pre_log" || true)"
    fi
    E2E_SERVER=$name
    e2e_start "$name" ip netns exec "$ns" env -i NO_COLOR=1 "${LAUNCH_ENV[@]}" "$BIN" "${LAUNCH_ARGS[@]}" "${OLD_CLIENT[@]}"
    if wait_stun "$name" "$NS_CLI" "$VPS_IP" 3478; then
        relay_log_check "$name-relay-address" "$name" "$relay_ip"
        e2e_uclient "$name-udp" -p 3478 "${SHORT[@]}" -W "$secret" -u alice "${TO_JVB[@]}" "$VPS_IP" || true
        e2e_uclient "$name-tcp" -p 3478 "${SHORT[@]}" -t -W "$secret" -u alice "${TO_JVB[@]}" "$VPS_IP" || true
    else
        e2e_record "$name" FAIL "did not answer STUN on $VPS_IP:3478 (log: $E2E_DIR/$name.log)"
    fi
    e2e_stop "$name"
    E2E_SERVER=""
}

DEPLOY_SECRET=$(e2e_random_hex 16)
DOTENV="$E2E_DIR/compose.env"
mkdir -p "$E2E_DIR/jitsi-config/ferroturn"
cp "$ROOT/docker/turnserver.conf" "$E2E_DIR/jitsi-config/ferroturn/turnserver.conf"
cat >"$DOTENV" <<EOF
TURN_STATIC_AUTH_SECRET=$DEPLOY_SECRET
EXTERNAL_IP=$VPS_IP
TURN_ALLOWED_PEER_IP=$JVB_IP
TURN_CREDENTIALS=$DEPLOY_SECRET
TURN_EXTERNAL_IP=$VPS_IP
CONFIG=$E2E_DIR/jitsi-config
EOF
for file in "$ROOT"/docker/docker-compose*.yaml; do
    label=$(basename "$file" .yaml)
    label=deploy-${label#docker-}
    if spec=$(python3 "$HERE/launch_spec.py" compose "$file" "$DOTENV" "$E2E_DIR"); then
        eval "$spec"
        [[ "$LAUNCH_NET" == bridge ]] && docker_bridge_up
        deploy_run "$label" "$DEPLOY_SECRET" || true
        [[ "$LAUNCH_NET" == bridge ]] && docker_bridge_down
    else
        e2e_record "$label" FAIL "cannot read the compose file: $spec"
    fi
done

cp "$ROOT/conf/turnserver-jitsi.conf" "$E2E_DIR/systemd-turnserver.conf"
cat >"$E2E_DIR/ferroturn.env" <<EOF
FERROTURN_STATIC_AUTH_SECRET=$DEPLOY_SECRET
FERROTURN_EXTERNAL_IP=$VPS_IP
FERROTURN_ALLOWED_PEER_IP=$JVB_IP
EOF
if spec=$(python3 "$HERE/launch_spec.py" systemd "$ROOT/conf/ferroturn.service" \
    "$E2E_DIR/systemd-turnserver.conf" "$E2E_DIR/ferroturn.env"); then
    eval "$spec"
    deploy_run deploy-systemd "$DEPLOY_SECRET" || true
else
    e2e_record deploy-systemd FAIL "cannot read the unit: $spec"
fi

INIT_DIR="$E2E_DIR/jitsi-init"
if "$BIN" jitsi init --host "$VPS_IP" --external-ip "$VPS_IP" --jvb-ip "$JVB_IP" \
    --out "$INIT_DIR" >"$E2E_DIR/jitsi-init.log" 2>&1; then
    init_secret=$(sed -n 's/^static-auth-secret=//p' "$INIT_DIR/turnserver.conf" | head -n 1)
    LAUNCH_ARGS=(-c "$INIT_DIR/turnserver.conf")
    LAUNCH_ENV=()
    LAUNCH_PRE=()
    LAUNCH_NET=host
    deploy_run deploy-jitsi-init "$init_secret" || true
else
    e2e_record deploy-jitsi-init FAIL "jitsi init failed: $(tr '\n' ' ' <"$E2E_DIR/jitsi-init.log")"
fi

# --- the seed's layout: the bridge behind DNAT ---------------------------------------------------
# The bridge advertises the VPS's public address; the VPS forwards UDP 10000 to it over the
# tunnel. Packets from outside pass PREROUTING; the relay's own packets to its own public
# address are locally generated and pass OUTPUT instead, so they need the same rule there.
add_tunnel
start_peer bridge "$NS_HOME" "$TUN_HOME" "$BRIDGE_PORT"
DNAT=(-d "$VPS_IP" -p udp --dport "$BRIDGE_PORT" -j DNAT --to-destination "$TUN_HOME:$BRIDGE_PORT")
in_ns "$NS_VPS" iptables -t nat -A PREROUTING "${DNAT[@]}"

E2E_SERVER=seed-dnat
NO_COLOR=1 e2e_start seed-dnat ip netns exec "$NS_VPS" "$BIN" -c "$SEED" "${OLD_CLIENT[@]}"
if wait_stun seed-dnat "$NS_CLI" "$VPS_IP" 3478; then
    # The VPS now also owns the tunnel address: the bare external-ip names the public one.
    relay_log_check dnat-relay-address seed-dnat "$VPS_IP"
    if in_ns "$NS_CLI" python3 "$HERE/probe.py" echo "$VPS_IP" "$BRIDGE_PORT"; then
        e2e_record dnat-direct PASS "client -> $VPS_IP:$BRIDGE_PORT reaches the bridge via PREROUTING DNAT and back"
    else
        e2e_record dnat-direct FAIL "no echo from the bridge through PREROUTING DNAT"
    fi
    # -c: no RTCP stream to port 10001; only 10000 is forwarded, as in the seed's layout.
    TO_BRIDGE=(-c -e "$VPS_IP" -r "$BRIDGE_PORT")
    E2E_CLIENT_TIMEOUT=30 e2e_uclient_must_fail dnat-relay-without-output-rule -p 3478 -n 10 -m 1 -l 170 \
        -W "$SECRET" -u alice "${TO_BRIDGE[@]}" "$VPS_IP" || true
    in_ns "$NS_VPS" iptables -t nat -A OUTPUT "${DNAT[@]}"
    e2e_uclient dnat-relay -p 3478 "${LOAD[@]}" -W "$SECRET" -u alice "${TO_BRIDGE[@]}" "$VPS_IP" || true
    e2e_uclient dnat-relay-tcp -p 3478 "${LOAD[@]}" -t -W "$SECRET" -u alice "${TO_BRIDGE[@]}" "$VPS_IP" || true
else
    e2e_record dnat-start FAIL "ferroturn did not come up in the VPS with the tunnel (log: $E2E_DIR/seed-dnat.log)"
fi
e2e_stop seed-dnat
E2E_SERVER=""

e2e_summary "network-namespace suite against $BIN"
